"""The test OIDC provider (``provider/``: django-oauth-toolkit) as its own process on a free
loopback port, with its own SQLite database and RSA signing key."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from registryui.devtools.registry import free_port
from tests.deploy.support import answers, wait_until

PROJECT = Path(__file__).with_name("provider")


@dataclass
class Provider:
    url: str
    env: dict[str, str]
    process: subprocess.Popen
    log: Path

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/o/.well-known/openid-configuration"

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def manage(self, *args: str) -> None:
        run_manage(self.env, *args)

    def client(self, client_id: str, secret: str, redirect_uri: str, logout_uri: str) -> None:
        self.manage("idp_client", client_id, secret, redirect_uri, logout_uri)

    def user(self, username: str, password: str, *, groups: list[str], email: str = "") -> None:
        self.manage("idp_user", username, password, "--groups", ",".join(groups), "--email", email)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def run_manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def start_provider(root: Path) -> Provider:
    root.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = root / "idp-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(PROJECT),
        "DJANGO_SETTINGS_MODULE": "idp.settings",
        "IDP_SECRET_KEY": secrets.token_urlsafe(40),
        "IDP_DB": str(root / "idp.sqlite3"),
        "IDP_RSA_KEY_FILE": str(key_file),
    }
    run_manage(env, "migrate", "--no-input", "-v0")
    log = root / "idp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--threads",
                "4",
                "idp.wsgi",
            ],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    provider = Provider(f"http://127.0.0.1:{port}", env, process, log)
    try:

        def serving() -> bool:
            assert process.poll() is None, f"the provider exited:\n{log.read_text()}"
            return answers(f"{provider.url}/healthz") is not None

        wait_until(serving, timeout=120, interval=0.25, what="the OIDC provider to serve")
    except BaseException:
        provider.stop()
        raise
    return provider
