"""deploy/make-env.py: the README's first step writes a .env that Compose and the app accept."""

from __future__ import annotations

import stat
import subprocess
import sys

from .support import (
    BASE_DIR,
    app_env,
    env_example,
    interpolate,
    load_compose,
    token_key_files,
)

SCRIPT = BASE_DIR / "deploy" / "make-env.py"
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "REGISTRY_EVENTS_TOKEN", "REGISTRY_HTTP_SECRET")


def make_env(*args: str) -> subprocess.CompletedProcess:
    # The system's python3 on the Docker host: standard library only.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def read_env(path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_it_writes_fresh_secrets_readable_only_by_the_owner(tmp_path):
    first, second = tmp_path / "one.env", tmp_path / "two.env"
    assert make_env("--output", str(first)).returncode == 0
    assert make_env("--output", str(second)).returncode == 0
    one, two = read_env(first), read_env(second)
    for name in SECRETS:
        assert len(one[name]) >= 50, name
        assert one[name] != two[name]
        assert "$" not in one[name] and "@" not in one[name] and "/" not in one[name]
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    # Everything else is .env.example, unchanged.
    example, _ = env_example()
    assert {k: v for k, v in one.items() if k not in SECRETS} == {
        k: v for k, v in example.items() if k not in SECRETS
    }


def test_it_never_overwrites_a_env(tmp_path):
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=keep-me\n")
    done = make_env("--output", str(target))
    assert done.returncode == 1
    assert "exists; not overwriting" in done.stderr
    assert target.read_text() == "SECRET_KEY=keep-me\n"


def test_the_local_variant_serves_plain_http_on_localhost(tmp_path):
    target = tmp_path / ".env"
    assert make_env("--local", "--output", str(target)).returncode == 0
    values = read_env(target)
    assert values["BEHIND_HTTPS_PROXY"] == "false"
    assert values["ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    assert values["REGISTRY_PUBLIC_HOST"] == "localhost:5000"
    assert values["TOKEN_REALM"] == "http://localhost:8000/auth/token"
    # Compose finds every variable it requires.
    stack = interpolate(load_compose(), values)
    assert stack["services"]["ui"]["ports"] == ["127.0.0.1:8000:8000"]
    # And the app starts with it (DEBUG off, a real key).
    done = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), str(BASE_DIR / "manage.py"), "check"],
        env=app_env(
            **values,
            **token_key_files(tmp_path),
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_production_variant_passes_check_deploy(tmp_path):
    target = tmp_path / ".env"
    done = make_env("--output", str(target))
    assert "set ALLOWED_HOSTS" in done.stdout
    values = read_env(target)
    check = subprocess.run(
        [str(BASE_DIR / ".venv/bin/python"), str(BASE_DIR / "manage.py"), "check", "--deploy",
         "--fail-level", "WARNING"],
        env=app_env(
            **values,
            **token_key_files(tmp_path),
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
