"""Sign-in with a real OpenID Connect provider (django-oauth-toolkit, its own process on
loopback), driven through the whole authorization-code flow in Chromium: PKCE, state and
nonce, groups → teams at each login, provider logout, and tampered answers refused."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from django.contrib.auth import get_user_model

from registryui.accounts import oidc
from registryui.accounts.models import ExternalIdentity, GroupMapping, Provider
from registryui.core.models import AuditEntry
from registryui.teams.models import Membership, Team
from tests.browser.support import SCREENSHOTS, browser  # noqa: F401 (fixture)

from .oidc_provider import start_provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIENT_ID, CLIENT_SECRET = "registryui", "client-secret-for-tests"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    started = start_provider(tmp_path_factory.mktemp("idp"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def app(live_server, transactional_db, settings, provider) -> str:
    settings.OIDC_DISCOVERY_URL = provider.discovery_url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "registryui.accounts.oidc.OIDCBackend",
    ]
    oidc.forget_discovery()
    provider.client(
        CLIENT_ID,
        CLIENT_SECRET,
        f"{live_server.url}/accounts/oidc/callback/",
        f"{live_server.url}/accounts/login/",
    )
    developers = Team.objects.create(name="Developers", slug="developers")
    operators = Team.objects.create(name="Operators", slug="operators")
    GroupMapping.objects.create(provider=Provider.OIDC, group="devs", team=developers)
    GroupMapping.objects.create(provider=Provider.OIDC, group="ops", team=operators)
    yield live_server.url
    oidc.forget_discovery()


@pytest.fixture
def context(browser, app):  # noqa: F811 (the fixture imported above)
    context = browser.new_context(base_url=app, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str, password: str) -> None:
    """From the app's login page through the provider's login form and back."""
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(re.compile(r".*/login/\?next=.*"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#idp-login")


def teams_of(username: str) -> dict[str, str]:
    return dict(
        Membership.objects.filter(user__username=username).values_list("team__slug", "source")
    )


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_sign_in_maps_groups_to_teams_and_follows_the_provider(context, provider, app) -> None:
    provider.user("erin", "erin-idp-pw", groups=["devs", "ops", "unmapped"], email="e@x.org")
    # A local account with the same name and address is not hers: subjects, never e-mails.
    local = get_user_model().objects.create_user("erin", email="e@x.org", password="local-pw")
    page = context.new_page()
    authorize_requests: list[str] = []
    page.on(
        "request",
        lambda r: authorize_requests.append(r.url) if "/o/authorize/" in r.url else None,
    )
    sign_in(page, "erin", "erin-idp-pw")
    page.wait_for_url(f"{app}/")
    screenshot(page, "oidc-signed-in")
    assert page.locator("nav").get_by_text("erin-2").count() == 1

    # The authorization request carried a state, a nonce and an S256 PKCE challenge.
    sent = parse_qs(urlsplit(authorize_requests[0]).query)
    assert sent["code_challenge_method"] == ["S256"]
    assert len(sent["code_challenge"][0]) >= 43
    assert sent["state"][0] and sent["nonce"][0]

    identity = ExternalIdentity.objects.get()
    assert identity.issuer == provider.issuer
    assert identity.user != local
    assert identity.user.username == "erin-2" and identity.user.email == "e@x.org"
    assert not identity.user.has_usable_password()
    assert identity.groups == ["devs", "ops", "unmapped"]
    assert teams_of("erin-2") == {"developers": "oidc", "operators": "oidc"}
    assert teams_of("erin") == {}
    assert AuditEntry.objects.get(action="login").details == {"method": f"OIDC ({provider.issuer})"}

    # The provider takes "ops" away. Logging out here ends the session at the provider too:
    # the next sign-in asks for the password again, and brings the new groups.
    provider.user("erin", "erin-idp-pw", groups=["devs"], email="e@x.org")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{app}/accounts/login/")
    sign_in(page, "erin", "erin-idp-pw")  # waits for the provider's own login form
    page.wait_for_url(f"{app}/")
    assert teams_of("erin-2") == {"developers": "oidc"}
    removed = AuditEntry.objects.get(action="team_member_removed")
    assert removed.details == {"team": "Operators", "user": "erin-2", "source": "oidc"}
    # Still the same account: found by issuer and subject.
    assert ExternalIdentity.objects.get().user_id == identity.user_id


def tamper_authorization_request(context, name: str, value: str) -> None:
    """Change ``name`` in the authorization request our start view redirects to.

    Playwright intercepts only the first request of a redirect chain, so the start view's
    answer is fetched here and its redirect rewritten; the provider then echoes the changed
    ``state`` back to the callback, or signs the changed ``nonce`` into the ID token.
    """

    def handler(route) -> None:
        response = route.fetch(max_redirects=0)
        location = with_param(response.headers["location"], name, value)
        route.fulfill(status=302, headers={"Location": location, "Cache-Control": "no-store"})

    context.route(re.compile(r".*/accounts/oidc/start/.*"), handler)


def test_a_tampered_state_is_refused(context, provider, app) -> None:
    provider.user("frank", "frank-idp-pw", groups=["devs"])
    page = context.new_page()
    tamper_authorization_request(context, "state", "x" * 32)
    with page.expect_response(lambda r: "/accounts/oidc/callback/" in r.url) as callback:
        sign_in(page, "frank", "frank-idp-pw")
    assert callback.value.status == 400
    page.wait_for_load_state()
    screenshot(page, "oidc-tampered-state")
    assert "could not be trusted" in page.content()
    assert not ExternalIdentity.objects.exists()
    assert not Membership.objects.filter(user__username="frank").exists()
    failed = AuditEntry.objects.get(action="login_failed", via="oidc")
    assert "state" in failed.message
    # Untouched, the same flow in the same browser signs in (the provider's session is still
    # open, so it asks nothing): the refusal was the state's.
    context.unroute_all()
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(f"{app}/")
    assert teams_of("frank") == {"developers": "oidc"}


def test_a_tampered_nonce_is_refused(context, provider, app) -> None:
    provider.user("grace", "grace-idp-pw", groups=["devs"])
    page = context.new_page()
    tamper_authorization_request(context, "nonce", "tampered")
    with page.expect_response(lambda r: "/accounts/oidc/callback/" in r.url) as callback:
        sign_in(page, "grace", "grace-idp-pw")
    assert callback.value.status == 400
    page.wait_for_load_state()
    assert "could not be trusted" in page.content()
    failed = AuditEntry.objects.get(action="login_failed", via="oidc")
    assert "Nonce" in failed.message
    assert not ExternalIdentity.objects.exists()
    assert not Membership.objects.filter(user__username="grace").exists()
