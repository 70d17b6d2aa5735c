"""Helpers for the sign-in tests: the app as its own gunicorn process (for requests in
parallel, which the in-process live server cannot serve on SQLite), and free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from registryui.devtools.registry import free_port
from tests.deploy.support import BASE_DIR, AppDatabase, answers, app_env, wait_until


@dataclass
class AppServer:
    """gunicorn with two workers of eight threads on its own database (SQLite file, or a
    fresh PostgreSQL database when the suite runs on PostgreSQL)."""

    url: str
    env: dict[str, str]
    process: subprocess.Popen
    database: AppDatabase
    log: Path

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-c", code)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.database.drop()


def start_app(root: Path, **settings: str) -> AppServer:
    root.mkdir(parents=True, exist_ok=True)
    database = AppDatabase(root)
    port = free_port()
    env = app_env(
        DATABASE_URL=database.url,
        VAR_DIR=str(root / "var"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_FORMAT="plain",
        LOG_LEVEL="WARNING",
        # The worktree's code, whatever the virtualenv has installed.
        PYTHONPATH=str(BASE_DIR),
        **settings,
    )
    log = root / "server.log"
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "8",
                    "registryui.wsgi",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = AppServer(f"http://127.0.0.1:{port}", env, process, database, log)

        def serving() -> bool:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            return answers(f"{server.url}/healthz") is not None

        wait_until(serving, timeout=120, interval=0.25, what="the app to serve")
        return server
    except BaseException:
        if server is not None:
            server.stop()
        else:
            database.drop()
        raise
