from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registryui.devtools.registry import RegistryProcess, free_port
from registryui.devtools.samples import push_samples

from .support import (
    BASE_DIR,
    AppDatabase,
    answers,
    app_env,
    collect_static_like_the_image,
    wait_until,
)

ADMIN_USER, ADMIN_PASSWORD = "admin", "deploy-tests-" + secrets.token_urlsafe(8)


@dataclass
class ProductionServer:
    """The app as the container runs it: ``deploy/entrypoint.sh web`` (check, migrate,
    gunicorn with gunicorn.conf.py), DEBUG off, behind a (simulated) TLS proxy."""

    url: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen
    registry: RegistryProcess
    events_token: str
    admin: tuple[str, str] = (ADMIN_USER, ADMIN_PASSWORD)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BASE_DIR / ".venv/bin/python"), "manage.py", *args],
            cwd=BASE_DIR,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="session")
def production_server(tmp_path_factory) -> Iterator[ProductionServer]:
    root = tmp_path_factory.mktemp("production")
    registry = RegistryProcess(root / "registry").start()
    database = AppDatabase(root)
    process = None
    try:
        push_samples(registry.host, root)
        port = free_port()
        events_token = secrets.token_urlsafe(32)
        env = app_env(
            DATABASE_URL=database.url,
            VAR_DIR=str(root / "var"),
            STATIC_ROOT=str(root / "static"),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            # A browser posts with Origin http://127.0.0.1:port while the simulated proxy says
            # https; a real deployment has one https origin and needs no entry here.
            CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
            BEHIND_HTTPS_PROXY="true",
            FORWARDED_ALLOW_IPS="127.0.0.1",
            REGISTRY_URL=registry.url,
            REGISTRY_PUBLIC_HOST="registry.example.com",
            REGISTRY_EVENTS_TOKEN=events_token,
            GUNICORN_BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY="2",
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
        )
        collect_static_like_the_image(root / "static")
        log = root / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["sh", str(BASE_DIR / "deploy/entrypoint.sh"), "web"],
                cwd="/",  # the script finds the project itself
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = ProductionServer(
            f"http://127.0.0.1:{port}", port, env, log, process, registry, events_token
        )

        def serving() -> bool:
            assert process.poll() is None, f"the server exited:\n{server.log_text()}"
            return answers(f"{server.url}/healthz") is not None

        wait_until(serving, timeout=180, interval=0.25, what="the server to serve")
        created = server.manage(
            "createsuperuser",
            "--no-input",
            env={
                "DJANGO_SUPERUSER_USERNAME": ADMIN_USER,
                "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
                "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
            },
        )
        assert created.returncode == 0, created.stderr
        synced = server.manage("sync_registry")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        yield server
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        registry.stop()
        database.drop()
