"""A tiny token issuer for a registry in ``auth.token`` mode, independent of registryui.tokens.

It signs ES256 JWTs with a self-signed P-256 certificate in the ``x5c`` header (what registry
2.8 and 3.x both verify), ``aud`` a string (2.8 rejects a list), and grants what ``policy``
allows. It checks Basic credentials, counts the requests it answered, and can be told how long
its tokens live.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ISSUER = "registryui-test-issuer"
SERVICE = "registryui-test-registry"

#: (username or "", type, name, asked actions) → granted actions
Policy = Callable[[str, str, str, list[str]], list[str]]


def allow_all(user: str, kind: str, name: str, actions: list[str]) -> list[str]:
    return actions if user else []


@dataclass
class TokenRequest:
    user: str
    scopes: list[str]
    service: str


@dataclass
class TokenIssuer:
    folder: Path
    users: dict[str, str] = field(default_factory=dict)
    policy: Policy = allow_all
    expires_in: int = 300
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = self.folder / "issuer.pem"
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._x5c = [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER))]
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/token"

    def registry_config(self) -> dict[str, str]:
        """The ``auth.token`` section of the registry's configuration."""
        return {
            "realm": self.realm,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(self.cert_path),
        }

    def sign(self, user: str, access: list[dict], expires_in: int) -> str:
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": issued + expires_in,
            "nbf": issued - 1,
            "iat": issued,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        headers = {"x5c": [item.decode() for item in self._x5c]}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)

    def answer(self, authorization: str, query: str) -> tuple[int, dict]:
        params = parse_qs(query)
        user = ""
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            name, _, password = decoded.partition(":")
            if self.users.get(name) != password:
                return 401, {"details": "wrong credentials"}
            user = name
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        with self._lock:
            self.requests.append(TokenRequest(user, scopes, params.get("service", [""])[0]))
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = self.policy(user, kind, name, actions.split(","))
            access.append({"type": kind, "name": name, "actions": granted})
        token = self.sign(user, access, self.expires_in)
        return 200, {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    self.send_error(404)
                    return
                status, payload = issuer.answer(self.headers.get("Authorization", ""), parts.query)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
