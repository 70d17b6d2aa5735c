"""/profile/tokens/: create (shown once, stored hashed), list, revoke."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client
from django.utils import timezone

from registryui.core.models import AuditEntry
from registryui.tokens.models import PersonalAccessToken

pytestmark = pytest.mark.django_db
URL = "/profile/tokens/"
SECRET_RE = re.compile(r"rui_pat_[A-Za-z0-9_-]{40}")


def create(client, **data):
    return client.post(URL, {"name": "laptop", "max_level": "20", "expires": "30", **data})


@pytest.mark.parametrize("url", [URL, "/profile/robots/"])
def test_it_needs_a_login(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    # An htmx request (a session that expired under an open page) loads the login page whole.
    response = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": url})
    assert response["HX-Redirect"] == f"/accounts/login/?next={url}"


def test_a_new_token_is_shown_once_and_stored_hashed(client, personas) -> None:
    client.force_login(personas.pusher)
    response = create(client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = SECRET_RE.search(html).group(0)
    token = PersonalAccessToken.objects.get(user=personas.pusher)
    assert token.name == "laptop"
    assert token.max_level == 20
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix)
    assert 29 <= (token.expires_at - timezone.now()).days <= 30
    # Nowhere in the database, and not on the next visit.
    for field in ("prefix", "secret_hash", "name"):
        assert getattr(token, field) != secret
    listing = client.get(URL).content.decode()
    assert secret not in listing
    assert token.prefix in listing
    assert "laptop" in listing
    entry = AuditEntry.objects.get(action="pat_created")
    assert entry.actor == personas.pusher
    assert entry.details["token"] == token.prefix
    assert secret not in str(entry.details)


def test_a_token_can_be_made_to_never_expire(client, personas) -> None:
    client.force_login(personas.pusher)
    create(client, expires="never")
    assert PersonalAccessToken.objects.get().expires_at is None


@pytest.mark.parametrize(
    "data",
    [{"name": ""}, {"max_level": "40"}, {"max_level": "x"}, {"expires": "12"}],
)
def test_bad_input_is_400_with_the_form(client, personas, data) -> None:
    client.force_login(personas.pusher)
    response = create(client, **data)
    assert response.status_code == 400
    assert not PersonalAccessToken.objects.exists()
    assert "<form" in response.content.decode()


def test_users_see_only_their_own_tokens(client, personas) -> None:
    client.force_login(personas.pusher)
    create(client, name="pushers-token")
    client.force_login(personas.viewer)
    assert "pushers-token" not in client.get(URL).content.decode()


def test_revoke_is_a_csrf_protected_post(personas) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.pusher)
    page = client.get(URL)
    csrf = page.cookies["csrftoken"].value
    client.post(URL, {"name": "a", "max_level": "20", "expires": "30", "csrfmiddlewaretoken": csrf})
    token = PersonalAccessToken.objects.get()
    revoke = f"/profile/tokens/{token.pk}/revoke"

    assert client.get(revoke).status_code == 405
    assert client.post(revoke).status_code == 403  # no CSRF token
    token.refresh_from_db()
    assert token.revoked_at is None

    response = client.post(revoke, {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.state == "revoked"
    entry = AuditEntry.objects.get(action="pat_revoked")
    assert entry.actor == personas.pusher
    assert "revoked" in client.get(URL).content.decode()


def test_another_users_token_is_404(client, personas) -> None:
    client.force_login(personas.pusher)
    create(client)
    token = PersonalAccessToken.objects.get()
    client.force_login(personas.viewer)
    assert client.post(f"/profile/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
