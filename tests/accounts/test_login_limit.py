"""One rate limit for every password check (login page, admin login, /auth/token), per user
name and client address, atomic under parallel requests; every check in the audit log."""

from __future__ import annotations

import base64
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from registryui.accounts.models import LoginCounter
from registryui.core.models import AuditEntry
from registryui.tokens.keys import write_key_pair

from .support import start_app

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-staple"


@pytest.fixture
def alice(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 10
    settings.LOGIN_FAILURE_WINDOW = 300
    return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)


def login(client: Client, password: str, url: str = "/accounts/login/", username="alice"):
    return client.post(url, {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, alice) -> None:
    for _ in range(30):
        assert login(client, "guess").status_code in (200, 429)
    response = login(client, PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= 300
    # Only the checks under the limit were made (and audited); the rest were refused unchecked.
    failures = AuditEntry.objects.filter(action="login_failed", via="ui")
    assert failures.count() == 10
    assert {e.actor_name for e in failures} == {"alice"}
    assert not AuditEntry.objects.filter(action="login").exists()


def test_the_admin_login_shares_the_limit(client, alice) -> None:
    for _ in range(6):
        login(client, "guess")
    for _ in range(4):
        assert login(client, "guess", "/admin/login/").status_code == 200
    response = login(client, PASSWORD, "/admin/login/")
    assert not logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    assert AuditEntry.objects.filter(action="login_failed", via="admin").count() == 4


def test_case_does_not_buy_more_tries(client, alice) -> None:
    for name in ["alice", "ALICE", "Alice", "aLiCe"] * 3:
        login(client, "guess", username=name)
    assert LoginCounter.objects.get().attempts == 11  # stops at limit + 1
    assert login(client, PASSWORD).status_code == 429


def test_another_address_is_not_locked_out(alice) -> None:
    attacker, owner = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(12):
        login(attacker, "guess")
    response = login(owner, PASSWORD)
    assert response.status_code == 302
    assert logged_in(owner)


def test_the_lock_ends_after_the_window_and_a_success_resets(client, alice) -> None:
    for _ in range(11):
        login(client, "guess")
    LoginCounter.objects.update(last_at=timezone.now() - dt.timedelta(seconds=301))
    response = login(client, PASSWORD)
    assert response.status_code == 302
    assert not LoginCounter.objects.exists()


def test_the_audit_log_shows_failures_and_successes(client, alice) -> None:
    login(client, "guess")
    login(client, PASSWORD)
    failed = AuditEntry.objects.get(action="login_failed")
    assert (failed.actor_name, failed.via, failed.result) == ("alice", "ui", "refused")
    assert failed.client_ip == "127.0.0.1"
    assert failed.message == "wrong username or password"
    ok = AuditEntry.objects.get(action="login")
    assert (ok.actor, ok.via, ok.result, ok.client_ip) == (alice, "ui", "ok", "127.0.0.1")
    assert ok.details == {"method": "a password"}


# -- /auth/token in parallel, against a real server ---------------------------------------------


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limit-server")
    key, cert = root / "key.pem", root / "cert.pem"
    write_key_pair(key, cert, algorithm="ES256", common_name="registryui-test", days=30)
    server = start_app(
        root,
        TOKEN_AUTH_ENABLED="true",
        TOKEN_ISSUER="registryui-test",
        TOKEN_SERVICE="registry",
        TOKEN_KEY_FILE=str(key),
        TOKEN_CERT_FILE=str(cert),
        LOGIN_FAILURE_LIMIT="10",
        LOGIN_FAILURE_WINDOW="300",
    )
    try:
        server.shell(
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user('bob', password='{PASSWORD}')"
        )
        yield server
    finally:
        server.stop()


def test_forty_parallel_wrong_logins_at_auth_token_check_at_most_the_limit(token_server):
    def attempt(i: int) -> int:
        credentials = base64.b64encode(f"bob:wrong-{i}".encode()).decode()
        return requests.get(
            f"{token_server.url}/auth/token",
            params={"service": "registry", "scope": "repository:x/y:pull"},
            headers={"Authorization": f"Basic {credentials}"},
            timeout=120,
        ).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(attempt, range(40)))
    assert statuses.count(401) == 10, statuses
    assert statuses.count(429) == 30, statuses
    audited = token_server.shell(
        "from registryui.core.models import AuditEntry; "
        "print(AuditEntry.objects.filter(action='login_failed', via='token').count())"
    )
    assert audited.strip() == "10"


def test_refused_attempts_do_not_extend_the_lock(client, alice) -> None:
    for _ in range(11):
        login(client, "guess")
    LoginCounter.objects.update(last_at=timezone.now() - dt.timedelta(seconds=200))
    response = login(client, PASSWORD)
    assert response.status_code == 429
    # The lock ends 300 s after the last *checked* attempt, not after this refused one.
    assert 95 <= int(response["Retry-After"]) <= 100
    assert LoginCounter.objects.get().attempts == 11
