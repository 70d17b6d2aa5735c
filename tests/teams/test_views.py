"""The profile page, password change, logout, and the login gates of the decorators."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django_htmx.middleware import HtmxMiddleware

from registryui.teams.decorators import member_required, viewer_required
from registryui.teams.models import SiteSettings
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_profile_lists_teams_and_their_grants(personas):
    response = personas["a_deleter"].client().get("/profile/")
    assert response.status_code == 200
    body = text(response)
    assert "<h1>a-deleter</h1>" in body
    assert re.search(r"<h3[^>]*>team-a</h3>", body) and re.search(r"<h3[^>]*>team-a-ops</h3>", body)
    assert "<td><code>team-a/*</code></td> <td>delete</td> <td>view, push, delete</td>" in body
    assert "<td><code>hello</code></td> <td>view</td> <td>view</td>" in body
    assert "team-b" not in body
    assert 'href="/accounts/password_change/"' in body
    assert "You administer" not in body


def test_the_profile_links_to_personal_tokens_and_for_team_admins_to_robots(personas):
    body = text(personas["a_viewer"].client().get("/profile/"))
    assert 'href="/profile/tokens/"' in body
    assert 'href="/profile/robots/"' not in body
    body = text(personas["b_admin"].client().get("/profile/"))
    assert 'href="/profile/robots/"' in body


def test_a_team_admin_is_told_what_they_administer(personas):
    body = text(personas["b_admin"].client().get("/profile/"))
    assert "You administer" in body and "<code>team-b/*</code>" in body
    assert 'href="/admin/teams/team/"' in body


def test_users_in_no_team_and_superusers(personas):
    client = personas["no_team"].client()
    body = text(client.get("/profile/"))
    assert "You are not in any team. Ask an administrator" in body
    SiteSettings(no_team_patterns="hello").save()
    body = text(client.get("/profile/"))
    assert "view on <code>hello</code> — site settings (users in no team)" in body
    body = text(personas["superuser"].client().get("/profile/"))
    assert "Superuser: you can see and do everything." in body
    assert "admin on <code>*</code> — superuser" in body


@pytest.mark.parametrize("persona", ["anonymous", "public"])
def test_the_profile_needs_a_login(personas, persona):
    response = personas[persona].client().get("/profile/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/profile/"


def test_changing_the_password(personas):
    persona = personas["a_viewer"]
    client = persona.client(enforce_csrf_checks=True)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<h1>Change your password</h1>" in body
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    new = "a-much-better-passphrase-42"
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "wrong",
            "new_password1": new,
            "new_password2": new,
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": new,
            "new_password2": new,
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_change/done/"
    assert "<h1>Password changed</h1>" in client.get(response["Location"]).content.decode()
    persona.user.refresh_from_db()
    assert persona.user.check_password(new)
    assert Client().login(username="a-viewer", password=new)


def test_logging_out_is_a_post(personas):
    client = personas["a_viewer"].client()
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/profile/").status_code == 200
    assert client.post("/accounts/logout/").status_code in (200, 302)
    assert client.get("/profile/").status_code == 302


# -- the decorators -----------------------------------------------------------------------------


def _call(decorator, rf: RequestFactory, user, **headers):
    @decorator
    def view(request):
        return HttpResponse("inside")

    request = rf.get("/r/team-a/api?tab=tags", **headers)
    request.user = user
    return HtmxMiddleware(view)(request)


def test_viewer_required_sends_anonymous_visitors_to_the_login_page(personas, rf):
    anonymous = personas["anonymous"].user
    response = _call(viewer_required, rf, anonymous)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/r/team-a/api%3Ftab%3Dtags"

    # An htmx request gets a client-side redirect that returns to the page, not the fragment.
    response = _call(
        viewer_required,
        rf,
        anonymous,
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/r/team-a/api",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/r/team-a/api"

    SiteSettings(anonymous_view=True).save()
    assert _call(viewer_required, rf, anonymous).content == b"inside"
    assert _call(member_required, rf, anonymous).status_code == 302
    assert _call(member_required, rf, personas["no_team"].user).content == b"inside"


# -- the pages' markup --------------------------------------------------------------------------

BASE_DIR = Path(__file__).resolve().parents[2]
ACCOUNT_TEMPLATES = [
    *sorted((BASE_DIR / "templates/teams").glob("*.html")),
    *sorted((BASE_DIR / "templates/tokens").glob("*.html")),
    *sorted((BASE_DIR / "templates/registration").glob("password_change*.html")),
]


@pytest.mark.parametrize("template", ACCOUNT_TEMPLATES, ids=lambda p: p.name)
def test_account_pages_use_only_classes_the_stylesheet_styles(template: Path) -> None:
    """A class the stylesheet does not know (a notice, an error) renders as plain text."""
    css = (BASE_DIR / "static/css/registryui.css").read_text()
    used = {
        name
        for value in re.findall(r'class="([^"{]*)"', template.read_text())
        for name in value.split()
    }
    unknown = sorted(name for name in used if not re.search(rf"\.{re.escape(name)}\b", css))
    assert unknown == []
