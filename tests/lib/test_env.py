"""The typed environment readers behind settings.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from registryui.lib.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ["true", "True", " TRUE ", "on", "yes", "1"])
def test_booleans_that_mean_true(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG") is True


@pytest.mark.parametrize("raw", ["false", "OFF", "no", "0", ""])
def test_booleans_that_mean_false(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", default=True) is False


@pytest.mark.parametrize("raw", ["ture", "flase", "y", "2", "enabled", "yes please"])
def test_a_boolean_typo_is_an_error_not_false(monkeypatch, raw):
    monkeypatch.setenv("DEBUG", raw)
    with pytest.raises(ImproperlyConfigured) as caught:
        env_bool("DEBUG")
    assert f"DEBUG={raw!r} is not a boolean" in str(caught.value)


def test_unset_values_take_their_defaults(monkeypatch):
    for name in ("UNSET_BOOL", "UNSET_INT", "UNSET_FLOAT", "UNSET_LIST", "UNSET_STR"):
        monkeypatch.delenv(name, raising=False)
    assert env_bool("UNSET_BOOL", default=True) is True
    assert env_int("UNSET_INT", 8) == 8
    assert env_float("UNSET_FLOAT", 3.05) == 3.05
    assert env_list("UNSET_LIST", ["a"]) == ["a"]
    assert env_str("UNSET_STR", "x") == "x"


def test_integers(monkeypatch):
    monkeypatch.setenv("N", "16")
    assert env_int("N", 8, minimum=1) == 16
    monkeypatch.setenv("N", "")
    assert env_int("N", 8) == 8
    monkeypatch.setenv("N", "eight")
    with pytest.raises(ImproperlyConfigured, match="'eight' is not an integer"):
        env_int("N", 8)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="must be at least 1"):
        env_int("N", 8, minimum=1)


def test_floats(monkeypatch):
    monkeypatch.setenv("T", "2.5")
    assert env_float("T", 1.0) == 2.5
    monkeypatch.setenv("T", "soon")
    with pytest.raises(ImproperlyConfigured, match="not a number"):
        env_float("T", 1.0)


def test_lists_drop_blanks(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, ,b.example.com ,")
    assert env_list("HOSTS") == ["a.example.com", "b.example.com"]
    monkeypatch.setenv("HOSTS", "")
    assert env_list("HOSTS", ["default"]) == []


def test_a_secret_comes_from_its_file_first(monkeypatch, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-the-file\n")
    monkeypatch.setenv("REGISTRY_PASSWORD", "from-the-variable")
    assert env_secret("REGISTRY_PASSWORD") == "from-the-variable"
    monkeypatch.setenv("REGISTRY_PASSWORD_FILE", str(secret))
    assert env_secret("REGISTRY_PASSWORD") == "from-the-file"  # trailing newline stripped


def test_an_unreadable_secret_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match=r"SECRET_KEY_FILE=.* cannot be read"):
        env_secret("SECRET_KEY")


def test_sqlite_urls(tmp_path):
    relative = parse_database_url("sqlite:///var/db.sqlite3", base_dir=tmp_path)
    assert relative["ENGINE"] == "django.db.backends.sqlite3"
    assert relative["NAME"] == tmp_path / "var" / "db.sqlite3"
    absolute = parse_database_url("sqlite:////srv/data/ui.sqlite3", base_dir=tmp_path)
    assert absolute["NAME"] == Path("/srv/data/ui.sqlite3")
    assert parse_database_url("sqlite:///:memory:", base_dir=tmp_path)["NAME"] == ":memory:"
    # WAL and IMMEDIATE transactions let the web read while a sync writes.
    assert "journal_mode=WAL" in relative["OPTIONS"]["init_command"]
    assert relative["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_postgres_urls(tmp_path, scheme):
    config = parse_database_url(
        f"{scheme}://ui%40corp:p%3Ass%2Fw@db.internal:6543/registry_ui?sslmode=require",
        base_dir=tmp_path,
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == (
        "registry_ui",
        "ui@corp",
        "p:ss/w",
    )
    assert (config["HOST"], config["PORT"]) == ("db.internal", "6543")
    assert config["OPTIONS"] == {"sslmode": "require"}


def test_postgres_defaults_and_trust_auth(tmp_path):
    config = parse_database_url("postgres://postgres@127.0.0.1/test", base_dir=tmp_path)
    assert (config["USER"], config["PASSWORD"], config["PORT"]) == ("postgres", "", "")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://user@host:5432/", "names no database"),
        ("mysql://user@host/db", "scheme 'mysql' is not supported"),
        ("/var/db.sqlite3", "scheme '' is not supported"),
    ],
)
def test_bad_database_urls(tmp_path, url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url(url, base_dir=tmp_path)


def run_settings(**environ: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "DATABASE_URL"))}
    env.update(environ, DJANGO_SETTINGS_MODULE="registryui.settings", SECRET_KEY="x" * 50)
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_a_boolean_typo_at_start_up():
    done = run_settings(DEBUG="ture")
    assert done.returncode != 0
    assert "ImproperlyConfigured: DEBUG='ture' is not a boolean" in done.stderr
    assert run_settings(DEBUG="false").stdout.strip() == "False"
