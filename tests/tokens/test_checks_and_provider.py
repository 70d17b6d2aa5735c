"""System checks of token mode, and the app's own token provider (no registry needed)."""

from __future__ import annotations

import pytest

from registryui.catalog import upstream
from registryui.core.models import AuditEntry
from registryui.registry import RegistryError
from registryui.tokens.checks import check_token_keys
from registryui.tokens.issuing import AppTokenProvider, app_token_provider_factory
from registryui.tokens.keys import write_key_pair

from .support import SERVICE, decode


def test_checks_are_silent_when_token_mode_is_off(settings) -> None:
    settings.TOKEN_AUTH_ENABLED = False
    settings.TOKEN_KEY_FILE = "/nonexistent/key.pem"
    assert check_token_keys(None) == []


def test_checks_pass_with_a_good_key(token_mode) -> None:
    assert check_token_keys(None) == []


def test_a_missing_key_is_an_error_that_says_what_to_run(token_mode, settings, tmp_path):
    settings.TOKEN_KEY_FILE = str(tmp_path / "missing.pem")
    [error] = check_token_keys(None)
    assert error.id == "registryui.tokens.E002"
    assert "missing.pem" in error.msg
    assert "token_keys" in error.hint


@pytest.mark.parametrize(("days", "expected"), [(10, "W001"), (0, "E003")])
def test_a_certificate_near_or_past_its_end_is_reported(
    token_mode, settings, tmp_path, days, expected
):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    write_key_pair(key, cert, common_name="registryui-tests", days=days)
    settings.TOKEN_KEY_FILE, settings.TOKEN_CERT_FILE = str(key), str(cert)
    assert [e.id for e in check_token_keys(None)] == [f"registryui.tokens.{expected}"]


def test_empty_names_are_errors(token_mode, settings) -> None:
    settings.TOKEN_SERVICE = ""
    assert [e.id for e in check_token_keys(None)] == ["registryui.tokens.E001"]


def test_the_client_gets_a_provider_only_in_token_mode(token_mode, settings) -> None:
    assert isinstance(upstream.build_client().token_provider, AppTokenProvider)
    settings.TOKEN_AUTH_ENABLED = False
    assert app_token_provider_factory() is None
    assert upstream.build_client().token_provider is None


@pytest.mark.django_db
def test_the_app_signs_what_the_registry_asks_for(token_mode) -> None:
    token, lifetime = AppTokenProvider()(
        {
            "realm": "http://ui/auth/token",
            "service": SERVICE,
            "scope": "registry:catalog:* repository:team-b/x:pull",
        }
    )
    assert lifetime == 300
    claims = decode(token, token_mode)
    assert claims["sub"] == "registryui$app"
    assert claims["access"] == [
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "team-b/x", "actions": ["pull"]},
    ]
    # Pull and catalog tokens are not audited (a sync asks for many).
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_apps_delete_tokens_are_audited(token_mode) -> None:
    AppTokenProvider()({"service": SERVICE, "scope": "repository:team-a/api:delete"})
    entry = AuditEntry.objects.get(action="token_issued")
    assert entry.actor_name == "registryui$app"
    assert entry.details["kind"] == "app"
    assert entry.repository == "team-a/api"


def test_a_registry_with_another_service_is_a_clear_error(token_mode) -> None:
    with pytest.raises(RegistryError, match="does not match TOKEN_SERVICE") as caught:
        AppTokenProvider()({"service": "other", "scope": "registry:catalog:*"})
    assert "other" in caught.value.detail
