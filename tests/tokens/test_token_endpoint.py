"""GET /auth/token with the test client: credentials, grants, claims, audit and the rate limit.

The registry's side of the same flow is in test_registry_token_mode.py.
"""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest
from django.utils import timezone

from registryui.accounts.models import LoginCounter
from registryui.core.models import AuditEntry
from registryui.teams.models import Grant, Level, SiteSettings
from registryui.tokens.models import (
    PAT_PREFIX,
    ROBOT_PREFIX,
    PersonalAccessToken,
    RobotAccount,
    RobotGrant,
)

from .support import SERVICE, basic, decode

pytestmark = pytest.mark.django_db
URL = "/auth/token"


def ask(client, *scopes: str, service: str = SERVICE, headers: dict | None = None, **params):
    query = {"service": service, "scope": list(scopes), **params}
    return client.get(URL, query, **(headers or {}))


def access_of(response, key_files) -> list[dict]:
    assert response.status_code == 200, response.content
    return decode(response.json()["token"], key_files)["access"]


def test_it_signs_a_token_the_registry_can_verify(client, token_mode, personas) -> None:
    before = int(time.time())
    response = ask(client, "repository:team-a/api:pull,push", headers=basic("pusher", "pw-pusher"))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    issued_at = dt.datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
    assert abs(issued_at.timestamp() - before) <= 5

    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert len(header["x5c"]) == 1
    claims = decode(body["token"], token_mode)
    assert claims["iss"] == "registryui-tests"
    assert claims["sub"] == "pusher"
    assert claims["aud"] == SERVICE  # a string: registry 2.8 rejects a list
    assert isinstance(claims["aud"], str)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 16
    assert claims["access"] == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull", "push"]}
    ]


def test_each_token_has_its_own_id(client, token_mode, personas) -> None:
    first = decode(ask(client, "repository:team-a/a:pull").json()["token"], token_mode)
    second = decode(ask(client, "repository:team-a/a:pull").json()["token"], token_mode)
    assert first["jti"] != second["jti"]


def test_expiry_is_configurable(client, token_mode, personas, settings) -> None:
    settings.TOKEN_EXPIRY = 60
    response = ask(client, "repository:team-a/a:pull", headers=basic("viewer", "pw-viewer"))
    claims = decode(response.json()["token"], token_mode)
    assert response.json()["expires_in"] == 60
    assert claims["exp"] - claims["iat"] == 60


PERSONA_MATRIX = [
    # persona, scope asked, actions granted
    ("viewer", "repository:team-a/api:pull,push,delete", ["pull"]),
    ("pusher", "repository:team-a/api:pull,push,delete", ["pull", "push"]),
    ("deleter", "repository:team-a/api:pull,push,delete", ["pull", "push", "delete"]),
    ("admin_a", "repository:team-a/api:pull,push,delete", ["pull", "push", "delete"]),
    ("admin_b", "repository:team-a/api:pull,push,delete", []),
    ("outsider", "repository:team-a/api:pull", []),
    ("root", "repository:team-b/x:pull,push,delete", ["pull", "push", "delete"]),
    ("pusher", "repository:team-b/x:pull,push", []),
    ("root", "registry:catalog:*", ["*"]),
    ("admin_a", "registry:catalog:*", []),
]


@pytest.mark.parametrize(("username", "scope", "expected"), PERSONA_MATRIX)
def test_persona_matrix(client, token_mode, personas, username, scope, expected) -> None:
    response = ask(client, scope, headers=basic(username, f"pw-{username}"))
    access = access_of(response, token_mode)
    assert access == ([{**_entry(scope), "actions": expected}] if expected else [])


def _entry(scope: str) -> dict:
    type_, _, rest = scope.partition(":")
    name = rest.rpartition(":")[0]
    return {"type": type_, "name": name}


def test_a_mount_needs_pull_on_the_source(client, token_mode, personas) -> None:
    # docker asks for pull,push on the target and pull on the source of a blob mount.
    response = ask(
        client,
        "repository:team-a/new:pull,push",
        "repository:team-b/base:pull",
        headers=basic("pusher", "pw-pusher"),
    )
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/new", "actions": ["pull", "push"]}
    ]


def test_grants_follow_the_resolver_as_it_changes(client, token_mode, personas) -> None:
    Grant.objects.create(team=personas.team_b_admins, pattern="team-a/shared", level=Level.VIEW)
    response = ask(client, "repository:team-a/shared:pull", headers=basic("admin_b", "pw-admin_b"))
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/shared", "actions": ["pull"]}
    ]


def test_a_login_without_scope_answers_a_token(client, token_mode, personas) -> None:
    # docker login asks for a token with account= and no scope, to check the credentials.
    response = client.get(
        URL, {"service": SERVICE, "account": "viewer"}, **basic("viewer", "pw-viewer")
    )
    assert access_of(response, token_mode) == []


# -- anonymous ------------------------------------------------------------------------------------


def test_anonymous_gets_nothing_unless_anonymous_viewing_is_on(client, token_mode) -> None:
    response = ask(client, "repository:team-a/api:pull")
    claims = decode(response.json()["token"], token_mode)
    assert claims["sub"] == ""
    assert claims["access"] == []

    SiteSettings(anonymous_view=True, public_patterns="team-a/*").save()
    response = ask(client, "repository:team-a/api:pull,push", "repository:team-b/x:pull")
    # Pull only, and only on the public patterns, whatever is asked.
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull"]}
    ]
    assert ask(client, "registry:catalog:*").status_code == 200
    assert access_of(ask(client, "registry:catalog:*"), token_mode) == []


def test_a_browser_session_does_not_count(client, token_mode, personas) -> None:
    client.force_login(personas.root)
    response = ask(client, "repository:team-a/api:pull")
    claims = decode(response.json()["token"], token_mode)
    assert claims["sub"] == ""
    assert claims["access"] == []


# -- bad input and bad credentials ----------------------------------------------------------------


def test_bad_credentials_are_401_and_audited(client, token_mode, personas) -> None:
    response = ask(client, "repository:team-a/api:push", headers=basic("pusher", "wrong"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    entry = AuditEntry.objects.get(action="login_failed")
    assert entry.actor_name == "pusher"
    assert entry.actor is None
    assert entry.via == "token"
    assert entry.result == AuditEntry.Result.REFUSED
    assert entry.client_ip == "127.0.0.1"
    assert entry.details["scopes"] == ["repository:team-a/api:push"]
    assert LoginCounter.objects.get(client_ip="127.0.0.1", username="pusher").attempts == 1


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "Basic !!!notbase64", "Basic " + "dXNlcm5hbWU="],  # the last: no ':'
)
def test_unreadable_credentials_are_401(client, token_mode, header) -> None:
    response = client.get(URL, {"service": SERVICE}, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "Basic" in response["WWW-Authenticate"]


@pytest.mark.parametrize("username", ["pus\x00her", "robot$c\x00i"])
def test_a_nul_in_the_credentials_is_unreadable_not_a_500(client, token_mode, personas, username):
    """PostgreSQL text cannot hold NUL: looking the name up or recording it would fail."""
    response = ask(client, "repository:team-a/api:pull", headers=basic(username, "pw-pusher"))
    assert response.status_code == 401
    assert "Basic authentication" in response.json()["errors"][0]["message"]
    assert not LoginCounter.objects.exists()


@pytest.mark.parametrize("password", ["wrong", "pw-deleter"])
def test_a_nul_in_a_scope_is_400_not_a_500(client, token_mode, personas, password) -> None:
    # Audited either way (a failed login; a token with delete) if it were read.
    scopes = ["repository:team-a/api:pull,delete", "repository:team-a/a\x00pi:pull"]
    response = ask(client, *scopes, headers=basic("deleter", password))
    assert response.status_code == 400
    # Refused before the view by registryui.core.middleware.RejectUnsafeInputMiddleware.
    assert "NUL character" in response.json()["errors"][0]["message"]
    assert not AuditEntry.objects.exists()


def test_inactive_users_cannot_log_in(client, token_mode, personas) -> None:
    personas.pusher.is_active = False
    personas.pusher.save()
    response = ask(client, "repository:team-a/api:pull", headers=basic("pusher", "pw-pusher"))
    assert response.status_code == 401


def test_malformed_scope_is_400(client, token_mode) -> None:
    response = ask(client, "repository:team-a/api")
    assert response.status_code == 400
    assert "type:name:actions" in response.json()["errors"][0]["message"]


def test_another_service_is_400(client, token_mode) -> None:
    response = ask(client, "repository:team-a/api:pull", service="someone-else")
    assert response.status_code == 400
    assert SERVICE in response.json()["errors"][0]["message"]


def test_post_is_404_and_not_a_csrf_failure(client, token_mode) -> None:
    # docker tries an OAuth2 POST first and falls back to GET on 404.
    response = client.post(URL, {"grant_type": "password", "username": "x", "password": "y"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_the_endpoint_is_404_when_token_mode_is_off(client, token_mode, settings) -> None:
    settings.TOKEN_AUTH_ENABLED = False
    response = ask(client, "repository:team-a/api:pull")
    assert response.status_code == 404
    assert "not enabled" in response.json()["errors"][0]["message"]


def test_a_missing_key_is_503_not_500(client, token_mode, settings, tmp_path) -> None:
    settings.TOKEN_KEY_FILE = str(tmp_path / "missing.pem")
    response = ask(client, "repository:team-a/api:pull")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


# -- rate limit -------------------------------------------------------------------------------


def test_failed_logins_are_rate_limited_per_name_and_address(
    client, token_mode, personas, settings
):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert ask(client, headers=basic("pusher", "guess")).status_code == 401
    # Past the limit even the right password is refused, without being checked.
    response = ask(client, "repository:team-a/api:pull", headers=basic("pusher", "pw-pusher"))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 300
    assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert AuditEntry.objects.filter(action="login_failed").count() == 3
    # Another address is not affected, nor are anonymous requests from this one.
    other = ask(
        client,
        "repository:team-a/api:pull",
        headers={**basic("pusher", "pw-pusher"), "REMOTE_ADDR": "127.0.0.2"},
    )
    assert other.status_code == 200
    assert ask(client, "repository:team-a/api:pull").status_code == 200


def test_failures_older_than_the_window_do_not_count(client, token_mode, personas, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    old = timezone.now() - dt.timedelta(seconds=301)
    LoginCounter.objects.create(username="pusher", client_ip="127.0.0.1", attempts=5, last_at=old)
    response = ask(client, "repository:team-a/api:pull", headers=basic("pusher", "pw-pusher"))
    assert response.status_code == 200
    # A success forgets the streak; the next failure starts a new one.
    assert not LoginCounter.objects.exists()
    assert ask(client, headers=basic("pusher", "nope")).status_code == 401
    assert LoginCounter.objects.get().attempts == 1


# -- audit of privileged tokens -------------------------------------------------------------------


def test_tokens_with_push_or_delete_are_audited(client, token_mode, personas) -> None:
    ask(client, "repository:team-a/api:pull", headers=basic("deleter", "pw-deleter"))
    assert not AuditEntry.objects.filter(action="token_issued").exists()

    ask(
        client,
        "repository:team-a/api:pull,push,delete",
        "repository:team-b/x:pull",
        headers=basic("deleter", "pw-deleter"),
    )
    entry = AuditEntry.objects.get(action="token_issued")
    assert entry.actor == personas.deleter
    assert entry.actor_name == "deleter"
    assert entry.via == "token"
    assert entry.repository == "team-a/api"
    assert entry.details["kind"] == "user"
    assert entry.details["scopes"] == [
        "repository:team-a/api:pull,push,delete",
        "repository:team-b/x:pull",
    ]
    assert entry.details["granted"] == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull", "push", "delete"]}
    ]


def test_asking_for_push_without_the_right_is_not_audited(client, token_mode, personas):
    ask(client, "repository:team-a/api:pull,push", headers=basic("viewer", "pw-viewer"))
    assert not AuditEntry.objects.filter(action="token_issued").exists()


# -- personal access tokens and robots ------------------------------------------------------------


def make_token(user, *, max_level=Level.PUSH, **fields) -> tuple[PersonalAccessToken, str]:
    token = PersonalAccessToken(user=user, name="ci", max_level=max_level, **fields)
    secret = token.set_secret(PAT_PREFIX)
    token.save()
    return token, secret


def test_a_personal_access_token_acts_as_its_user(client, token_mode, personas) -> None:
    token, secret = make_token(personas.deleter, max_level=Level.DELETE)
    response = ask(client, "repository:team-a/api:pull,delete", headers=basic("deleter", secret))
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull", "delete"]}
    ]
    token.refresh_from_db()
    assert token.last_used_at is not None
    entry = AuditEntry.objects.get(action="token_issued")
    assert entry.actor == personas.deleter
    assert entry.details["kind"] == "token"


def test_a_personal_access_token_is_capped_by_its_level(client, token_mode, personas) -> None:
    _, secret = make_token(personas.deleter, max_level=Level.VIEW)
    response = ask(
        client, "repository:team-a/api:pull,push,delete", headers=basic("deleter", secret)
    )
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull"]}
    ]


@pytest.mark.parametrize(
    ("max_level", "listed"), [(Level.VIEW, False), (Level.PUSH, False), (Level.DELETE, True)]
)
def test_a_personal_access_tokens_limit_applies_to_the_catalog(
    client, token_mode, personas, max_level, listed
) -> None:
    """Issue 11: a superuser's pull-only token still listed every repository."""
    _, secret = make_token(personas.root, max_level=max_level)
    username = personas.root.get_username()
    response = ask(client, "registry:catalog:*", headers=basic(username, secret))
    catalog = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert access_of(response, token_mode) == (catalog if listed else [])
    # The same superuser's password still lists it.
    password = ask(client, "registry:catalog:*", headers=basic(username, f"pw-{username}"))
    assert access_of(password, token_mode) == catalog


def test_a_personal_access_token_never_exceeds_its_user(client, token_mode, personas) -> None:
    _, secret = make_token(personas.viewer, max_level=Level.DELETE)
    response = ask(
        client, "repository:team-a/api:pull,push,delete", headers=basic("viewer", secret)
    )
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull"]}
    ]


@pytest.mark.parametrize("state", ["revoked", "expired", "other user", "unknown"])
def test_unusable_personal_access_tokens_fail(client, token_mode, personas, state) -> None:
    fields = {}
    if state == "revoked":
        fields["revoked_at"] = timezone.now()
    if state == "expired":
        fields["expires_at"] = timezone.now() - dt.timedelta(seconds=1)
    _, secret = make_token(personas.pusher, **fields)
    username = "viewer" if state == "other user" else "pusher"
    if state == "unknown":
        secret = PAT_PREFIX + "x" * 40
    response = ask(client, "repository:team-a/api:pull", headers=basic(username, secret))
    assert response.status_code == 401
    entry = AuditEntry.objects.get(action="login_failed")
    assert entry.actor_name == username
    assert entry.message  # the reason, for whoever reads the audit log


def make_robot(team, grants, **fields) -> tuple[RobotAccount, str]:
    robot = RobotAccount(team=team, name="ci", **fields)
    secret = robot.set_secret(ROBOT_PREFIX)
    robot.save()
    for pattern, level in grants:
        RobotGrant.objects.create(robot=robot, pattern=pattern, level=level)
    return robot, secret


def test_a_robot_has_its_own_grants(client, token_mode, personas) -> None:
    robot, secret = make_robot(personas.team_a_admins, [("team-a/ci/*", Level.PUSH)])
    response = ask(
        client,
        "repository:team-a/ci/app:pull,push,delete",
        "repository:team-a/api:pull",
        headers=basic("robot$ci", secret),
    )
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/ci/app", "actions": ["pull", "push"]}
    ]
    assert decode(response.json()["token"], token_mode)["sub"] == "robot$ci"
    robot.refresh_from_db()
    assert robot.last_used_at is not None
    entry = AuditEntry.objects.get(action="token_issued")
    assert entry.actor is None
    assert entry.actor_name == "robot$ci"
    assert entry.details["kind"] == "robot"


def test_a_robot_never_outlives_its_teams_grants(client, token_mode, personas) -> None:
    _, secret = make_robot(personas.team_a_admins, [("team-a/*", Level.DELETE)])
    Grant.objects.filter(team=personas.team_a_admins).update(level=Level.VIEW)
    response = ask(
        client, "repository:team-a/x:pull,push,delete", headers=basic("robot$ci", secret)
    )
    assert access_of(response, token_mode) == [
        {"type": "repository", "name": "team-a/x", "actions": ["pull"]}
    ]
    Grant.objects.filter(team=personas.team_a_admins).delete()
    response = ask(client, "repository:team-a/x:pull", headers=basic("robot$ci", secret))
    assert access_of(response, token_mode) == []


def test_robots_never_list_the_catalog(client, token_mode, personas) -> None:
    _, secret = make_robot(personas.team_a_admins, [("*", Level.DELETE)])
    response = ask(client, "registry:catalog:*", headers=basic("robot$ci", secret))
    assert access_of(response, token_mode) == []


@pytest.mark.parametrize("state", ["revoked", "expired", "wrong secret", "unknown robot"])
def test_unusable_robots_fail(client, token_mode, personas, state) -> None:
    fields = {}
    if state == "revoked":
        fields["revoked_at"] = timezone.now()
    if state == "expired":
        fields["expires_at"] = timezone.now() - dt.timedelta(seconds=1)
    _, secret = make_robot(personas.team_a_admins, [("team-a/*", Level.VIEW)], **fields)
    username = "robot$nobody" if state == "unknown robot" else "robot$ci"
    if state == "wrong secret":
        secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    response = ask(client, "repository:team-a/api:pull", headers=basic(username, secret))
    assert response.status_code == 401
    assert AuditEntry.objects.filter(action="login_failed", actor_name=username).exists()
