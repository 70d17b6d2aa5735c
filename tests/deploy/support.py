"""Reading the deployment files the way Docker Compose and the container do, without Docker.

- ``load_compose()`` parses docker-compose.yml; ``interpolate()`` applies Compose's variable
  syntax (``${A}``, ``${A:-x}``, ``${A-x}``, ``${A:?msg}``, ``${A?msg}``, ``${A:+x}``, ``$$``)
  to every string in it, as ``docker compose config`` would.
- ``env_example()`` reads .env.example: the values it sets and every name it documents.
- ``app_env()`` builds the environment of a subprocess of the app (manage.py, gunicorn, the
  entry point) from scratch, so nothing of the test process leaks in.
- ``AppDatabase`` gives such a subprocess its own database: a SQLite file, or a fresh
  PostgreSQL database when the tests run on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
ENV_EXAMPLE = BASE_DIR / ".env.example"

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_]\w*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)
_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


class MissingVariable(Exception):
    """A ``${NAME:?message}`` whose variable is unset or empty: Compose refuses to start."""


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        parts = _BRACED.fullmatch(match["braced"])
        if parts is None or "${" in match["braced"]:
            raise ValueError(f"Unsupported variable reference {match[0]!r} (nested?)")
        name, op, arg = parts["name"], parts["op"], parts["arg"] or ""
        value = env.get(name)
        if op is None:
            return value or ""
        if op == ":-":
            return value if value else interpolate_text(arg, env)
        if op == "-":
            return value if value is not None else interpolate_text(arg, env)
        if op == ":?":
            if not value:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op == "?":
            if value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op == ":+":
            return interpolate_text(arg, env) if value else ""
        return interpolate_text(arg, env) if value is not None else ""  # "+"

    return _REFERENCE.sub(substitute, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def referenced_variables(node: Any) -> set[str]:
    """Every variable name a Compose file's strings refer to."""
    names: set[str] = set()
    if isinstance(node, str):
        for match in _REFERENCE.finditer(node):
            if match["plain"]:
                names.add(match["plain"])
            elif match["braced"] is not None:
                parts = _BRACED.fullmatch(match["braced"])
                if parts is None or "${" in match["braced"]:
                    raise ValueError(f"Unsupported variable reference {match[0]!r} (nested?)")
                names.add(parts["name"])
    elif isinstance(node, list):
        for item in node:
            names |= referenced_variables(item)
    elif isinstance(node, dict):
        for value in node.values():
            names |= referenced_variables(value)
    return names


def env_example() -> tuple[dict[str, str], set[str]]:
    """(the values .env.example sets, every name it documents, set or commented out)."""
    values: dict[str, str] = {}
    documented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line.strip())
        if not match:
            continue
        documented.add(match["name"])
        if not match["comment"]:
            values[match["name"]] = match["value"]
    return values, documented


def compose_env(**overrides: str) -> dict[str, str]:
    """What Compose interpolates with: .env.example, its secrets filled in, plus overrides."""
    values, _ = env_example()
    for name in (
        "SECRET_KEY",
        "POSTGRES_PASSWORD",
        "REGISTRY_EVENTS_TOKEN",
        "REGISTRY_HTTP_SECRET",
    ):
        values[name] = values.get(name) or secrets.token_urlsafe(50)
    values.update(overrides)
    return values


def token_key_files(folder: Path, issuer: str = "registryui") -> dict[str, str]:
    """TOKEN_KEY_FILE and TOKEN_CERT_FILE of a fresh pair, as the stack's token-keys job makes
    it (token authentication is on in .env.example, and the app's checks need the key)."""
    from registryui.tokens.keys import write_key_pair

    key, cert = folder / "token/key.pem", folder / "token/cert.pem"
    if not key.exists():
        write_key_pair(key, cert, common_name=issuer, days=365)
    return {"TOKEN_KEY_FILE": str(key), "TOKEN_CERT_FILE": str(cert)}


def random_secret_key() -> str:
    return secrets.token_urlsafe(50)


def app_env(**overrides: str) -> dict[str, str]:
    """A clean environment for a subprocess of the app, production-like by default."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "registryui.settings",
        "SECRET_KEY": random_secret_key(),
        "DEBUG": "false",
        "STATICFILES_BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


class AppDatabase:
    """A database of its own for the app's subprocesses, dropped at the end.

    On SQLite (the default test run) a file under ``directory``; when the tests run on
    PostgreSQL (``DATABASE_URL=postgres://…/<name>``), a fresh ``<name>_deploy_<hex>`` database
    on the same server, so parallel runs of other engineers never collide with it.
    """

    def __init__(self, directory: Path) -> None:
        test_url = os.environ.get("DATABASE_URL", "")
        self.postgres = test_url.startswith(("postgres://", "postgresql://"))
        if self.postgres:
            parts = urlsplit(test_url)
            self.name = f"{parts.path.lstrip('/') or 'registryui'}_deploy_{secrets.token_hex(4)}"
            self.admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
            self._execute(f'CREATE DATABASE "{self.name}"')
        else:
            self.url = f"sqlite:///{directory / 'registryui.sqlite3'}"

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def drop(self) -> None:
        if self.postgres:
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def wait_until(
    condition: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until ``condition()`` is truthy; generous deadlines, never a timed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def answers(url: str, **kwargs) -> requests.Response | None:
    try:
        return requests.get(url, timeout=2, allow_redirects=False, **kwargs)
    except requests.RequestException:
        return None


DOCKERFILE = BASE_DIR / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments): continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1].rstrip() + " "
            continue
        current += line
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def dockerfile_run_step(marker: str) -> str:
    """The one RUN instruction whose command contains ``marker``."""
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    matching = [args for args in runs if marker in args]
    assert len(matching) == 1, f"expected one RUN with {marker!r}, found {matching}"
    return matching[0]


def dockerfile_env() -> dict[str, str]:
    """The image's ENV, for commands run the way the image runs them."""
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            for pair in args.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def collect_static_like_the_image(static_root: Path) -> None:
    """Run the Dockerfile's collectstatic step (its first command) into ``static_root``."""
    import subprocess

    command = dockerfile_run_step("collectstatic").split(" && ")[0]
    env = app_env(**{**dockerfile_env(), "STATIC_ROOT": str(static_root)})
    for name in ("SECRET_KEY", "PYTHONPATH", "VAR_DIR"):
        env.pop(name, None)  # the build has no key; the command brings its throw-away one
    done = subprocess.run(
        ["sh", "-c", command], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
