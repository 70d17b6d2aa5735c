"""The login page with single sign-on configured, the token page's word to SSO users, the
admin's membership sources, and a provider that does not answer."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from registryui.accounts import oidc
from registryui.devtools.registry import free_port
from registryui.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def sso(settings):
    # Nothing listens there: pages that only offer the provider must not need it.
    settings.OIDC_DISCOVERY_URL = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "ui", "secret"
    settings.OIDC_PROVIDER_NAME = "Keycloak"
    settings.OIDC_TIMEOUT = 2
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "registryui.accounts.oidc.OIDCBackend",
    ]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    oidc.forget_discovery()
    yield settings
    oidc.forget_discovery()


def test_the_login_page_offers_the_provider_beside_the_password_form(client, sso) -> None:
    page = client.get("/accounts/login/?next=/search/").content.decode()
    assert 'href="/accounts/oidc/start/?next=/search/"' in page
    assert "Sign in with Keycloak" in page
    assert 'name="password"' in page


def test_without_oidc_there_is_only_the_password_form(client) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert 'name="password"' in page


def test_the_password_form_can_be_turned_off(client, sso) -> None:
    sso.LOGIN_PASSWORD_FORM = False
    get_user_model().objects.create_user("local", password="local-pw")
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Keycloak" in page
    assert 'name="password"' not in page
    response = client.post("/accounts/login/", {"username": "local", "password": "local-pw"})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    # The admin's login page stays for local accounts (the first superuser).
    get_user_model().objects.create_superuser("root", password="root-pw")
    response = client.post("/admin/login/", {"username": "root", "password": "root-pw"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_a_provider_that_does_not_answer_is_a_clear_page_and_passwords_still_work(
    client, sso
) -> None:
    response = client.get("/accounts/oidc/start/")
    assert response.status_code == 503
    assert "The sign-in provider did not answer" in response.content.decode()
    get_user_model().objects.create_user("local", password="local-pw")
    response = client.post("/accounts/login/", {"username": "local", "password": "local-pw"})
    assert response.status_code == 302


def test_a_callback_without_a_flow_is_refused(client, sso) -> None:
    response = client.get("/accounts/oidc/callback/", {"code": "c", "state": "s"})
    assert response.status_code == 302  # no sign-in was started in this browser
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_the_token_page_tells_sso_users_to_make_a_token(client, settings) -> None:
    user = get_user_model().objects.create_user("sso-user")
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    page = client.get("/profile/tokens/").content.decode()
    assert "Signed in with single sign-on?" in page
    assert "directory password" not in page
    settings.LDAP_SERVER_URI, settings.LDAP_TOKEN_PASSWORDS = "ldap://ldap.example.org", True
    assert "directory password" in client.get("/profile/tokens/").content.decode()


def test_the_admin_shows_where_memberships_come_from(client) -> None:
    root = get_user_model().objects.create_superuser("root", password="x")
    team = Team.objects.create(name="Developers", slug="developers")
    carol = get_user_model().objects.create_user("carol")
    dave = get_user_model().objects.create_user("dave")
    team.members.add(carol, through_defaults={"source": Membership.Source.OIDC})
    team.members.add(dave)
    client.force_login(root)
    page = client.get(f"/admin/teams/team/{team.pk}/change/").content.decode()
    assert "OIDC groups" in page and "added by hand" in page
    page = client.get(f"/admin/auth/user/{carol.pk}/change/").content.decode()
    assert "OIDC groups" in page


def test_a_half_configured_client_is_a_system_check_error(settings) -> None:
    from registryui.accounts.checks import sign_in_settings

    settings.OIDC_DISCOVERY_URL = "https://sso.example.org/.well-known/openid-configuration"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "ui", ""
    assert [e.msg for e in sign_in_settings(None)] == [
        "OIDC_DISCOVERY_URL is set but OIDC_CLIENT_SECRET is empty."
    ]
    settings.OIDC_RP_CLIENT_SECRET = "s"
    assert sign_in_settings(None) == []
