"""A real HTTP receiver on loopback for webhook tests: it records every request and answers
from a script (status codes in order, an optional hang), like a CI server or a chat bridge."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signature_ok(self, secret: str) -> bool:
        """Verify ``X-RegistryUI-Signature`` as a receiver would (README: Webhooks)."""
        timestamp = self.headers["x-registryui-timestamp"]
        expected = hmac.new(
            secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(self.headers["x-registryui-signature"], f"sha256={expected}")


@dataclass
class Receiver:
    #: Statuses to answer, in order; once used up, ``default``.
    script: list[int] = field(default_factory=list)
    default: int = 200
    #: Seconds to wait before answering the first ``hang_first`` requests.
    hang: float = 0.0
    hang_first: int = 0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    index = len(receiver.received) + receiver.in_flight
                    receiver.in_flight += 1
                    status = receiver.script[index] if index < len(receiver.script) else None
                if index < receiver.hang_first:
                    time.sleep(receiver.hang)
                status = status or receiver.default
                # Recorded before the answer goes out: the sender may look at ``received``
                # as soon as it has its answer.
                with receiver.lock:
                    receiver.in_flight -= 1
                    receiver.received.append(
                        Received(
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            status,
                        )
                    )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    reply = f"answered {status}".encode()
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def events(self) -> list[dict]:
        with self.lock:
            return [r.json for r in self.received]


def wait_for(condition, *, timeout: float = 30.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
