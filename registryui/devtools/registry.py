"""A real Distribution registry (Debian's ``docker-registry``, v2.8) for tests, demo, benchmarks.

Each ``RegistryProcess`` runs ``docker-registry serve`` on a free loopback port with its own
storage folder and configuration, and reads the registry's access log so that tests can count
exactly which requests the registry served.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

try:  # PyYAML is a dev dependency; JSON is valid YAML, so we can do without it.
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

import json

BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"

# Apache combined format: "GET /v2/ HTTP/1.1" 200 2 "referer" "user agent"
_ACCESS_RE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) \S+'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def htpasswd_line(username: str, password: str, *, rounds: int = 4) -> str:
    """A bcrypt htpasswd entry; cost 4 keeps the registry fast (it checks on every request)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds, prefix=b"2b"))
    # $2y$ is what `htpasswd -B` writes; the hash is the same as $2b$ (bcrypt 5 only makes 2a/2b).
    return f"{username}:$2y${hashed.decode()[4:]}"


@dataclass(frozen=True)
class AccessLine:
    method: str
    path: str
    status: int
    user_agent: str = ""

    @property
    def kind(self) -> str:
        """What the request was, in the client's terms (``manifest_head``, ``blob_get``, …)."""
        path = self.path.split("?", 1)[0]
        if path.rstrip("/") == "/v2":
            return "ping"
        if path == "/v2/_catalog":
            return "catalog"
        if path.endswith("/tags/list"):
            return "tags"
        if "/referrers/" in path:
            return "referrers"
        for part, name in (
            ("/manifests/", "manifest"),
            ("/blobs/uploads/", "blob_upload"),
            ("/blobs/", "blob"),
        ):
            if part in path:
                if name == "blob_upload":
                    return name
                return f"{name}_{self.method.lower()}"
        return "other"


@dataclass
class RegistryProcess:
    root: Path
    delete_enabled: bool = True
    htpasswd: dict[str, str] | None = None
    notifications: list[dict[str, Any]] | None = None
    token_auth: dict[str, str] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage = self.root / "storage"
        self.config_path = self.root / "config.yml"
        self.log_path = self.root / "registry.log"
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": self.delete_enabled},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": "registryui-tests"},
        }
        if self.htpasswd is not None:
            path = self.root / "htpasswd"
            path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.htpasswd.items()))
            config["auth"] = {"htpasswd": {"realm": "registryui-tests", "path": str(path)}}
        if self.token_auth is not None:
            config["auth"] = {"token": dict(self.token_auth)}
        if self.notifications:
            config["notifications"] = {"endpoints": self.notifications}
        _merge(config, self.extra_config)
        return config

    def write_config(self) -> Path:
        config = self.config()
        text = yaml.safe_dump(config, sort_keys=False) if yaml else json.dumps(config, indent=2)
        self.config_path.write_text(text)
        return self.config_path

    def start(self, timeout: float = 15.0) -> RegistryProcess:
        if not Path(BINARY).exists():
            raise RuntimeError(
                "docker-registry is not installed: apt-get install -y docker-registry"
            )
        self.write_config()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [BINARY, "serve", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                requests.get(f"{self.url}/v2/", timeout=0.5)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not start in {timeout}s:\n{self.log_tail()}")

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """Kill the registry at once (SIGKILL), as a crash would."""
        self.stop(sig=signal.SIGKILL)

    def restart(self) -> RegistryProcess:
        self.stop()
        return self.start()

    def garbage_collect(self, *, delete_untagged: bool = False) -> str:
        """Run ``docker-registry garbage-collect`` on this registry's config (stop it first)."""
        args = [BINARY, "garbage-collect", str(self.config_path)]
        if delete_untagged:
            args.append("--delete-untagged")
        done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
        return done.stdout + done.stderr

    def blob_bytes(self) -> int:
        """Bytes of every blob file in storage (layers, configs and manifests)."""
        blobs = self.storage / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.exists() else 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def access_log(self) -> list[AccessLine]:
        """Every request the registry answered so far, in order, from its access log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [
            AccessLine(m["method"], m["path"], int(m["status"]), m["agent"] or "")
            for m in _ACCESS_RE.finditer(text)
        ]

    def mark(self) -> int:
        """A position in the access log; pass it to ``requests_since``."""
        return len(self.access_log())

    def requests_since(
        self, mark: int, *, settle: float = 0.2, timeout: float = 10.0
    ) -> list[AccessLine]:
        """The requests served since ``mark``.

        The registry writes an access line just after its response, so the last lines of a
        run may land a moment after the client has its answer: read until the log has not
        grown for ``settle`` seconds (bounded by ``timeout`` on a busy machine).
        """
        lines = self.access_log()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(settle)
            again = self.access_log()
            if len(again) == len(lines):
                break
            lines = again
        return lines[mark:]

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
