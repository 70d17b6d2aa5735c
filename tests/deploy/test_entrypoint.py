"""deploy/entrypoint.sh apart from ``web`` (which test_server.py runs): the token-keys job of
the Compose stack, and passing other commands through (the worker's)."""

from __future__ import annotations

import os
import subprocess

from .support import BASE_DIR, app_env

SCRIPT = str(BASE_DIR / "deploy" / "entrypoint.sh")


def entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", SCRIPT, *args],
        env=app_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def test_token_keys_does_nothing_and_succeeds_without_token_auth(tmp_path):
    """The stack's opt-out: the job still runs (ui and registry wait for its success)."""
    done = entrypoint(
        "token-keys",
        TOKEN_AUTH_ENABLED="false",
        TOKEN_KEY_FILE=str(tmp_path / "private/key.pem"),
        TOKEN_CERT_FILE=str(tmp_path / "public/cert.pem"),
    )
    assert done.returncode == 0, done.stderr
    assert "TOKEN_AUTH_ENABLED is not true" in done.stdout
    assert not (tmp_path / "private").exists()


def test_token_keys_creates_the_pair_once_then_keeps_it(tmp_path):
    key, cert = tmp_path / "private/key.pem", tmp_path / "public/cert.pem"
    env = {"TOKEN_AUTH_ENABLED": "true", "TOKEN_KEY_FILE": str(key), "TOKEN_CERT_FILE": str(cert)}
    first = entrypoint("token-keys", **env)
    assert first.returncode == 0, first.stderr
    assert "rootcertbundle" in first.stdout  # token_keys printed the registry's block
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert key.stat().st_mode & 0o077 == 0
    if os.geteuid() == 0:  # as in the container: the job runs as root, the app as 10001
        for path in (key, cert, key.parent, cert.parent):
            assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001), path
        assert key.parent.stat().st_mode & 0o777 == 0o700
    original = cert.read_bytes()

    again = entrypoint("token-keys", **env)
    assert again.returncode == 0
    assert "keeping the existing key" in again.stdout
    assert cert.read_bytes() == original

    replaced = entrypoint("token-keys", "--force", **env)
    assert replaced.returncode == 0, replaced.stderr
    assert cert.read_bytes() != original


def test_other_commands_run_as_given():
    done = entrypoint("python", "-c", "import os; print(os.getcwd())")
    assert done.returncode == 0
    assert done.stdout.strip() == str(BASE_DIR)  # it runs from the project folder
