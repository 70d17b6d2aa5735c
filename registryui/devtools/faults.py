"""A small HTTP server that injects faults a real registry cannot produce on demand.

``FaultProxy`` forwards every request unchanged to a real registry, except those matching a
``Fault`` (a 503 storm, a 429 with ``Retry-After``, a catalog that breaks on its second page),
which it answers itself. Without an upstream it is a bare fake server that answers only what
its faults and routes say (502 otherwise). It records every request it saw, with headers.

Use it only where a real registry cannot show the behaviour; everything else is tested
against ``RegistryProcess``.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: (method, path with query, headers, body) → (status, headers, body), or None to pass on.
Route = Callable[[str, str, dict[str, str], bytes], "tuple[int, dict[str, str], bytes] | None"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early are part of the tests, not errors


@dataclass
class Fault:
    """Answer requests whose method and path match with ``status`` (``times`` times, or always)."""

    status: int
    method: str | None = None
    path: str = ""  # a regular expression searched in the path and query
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int | None = None
    #: Let this many matching requests through before the fault starts.
    after: int = 0
    hits: int = 0
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return re.search(self.path, path) is not None


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    at: float


class FaultProxy:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.faults: list[Fault] = []
        self.routes: list[Route] = []
        self.seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, status: int, **options) -> Fault:
        fault = Fault(status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def route(self, route: Route) -> None:
        with self._lock:
            self.routes.append(route)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.routes.clear()

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {key: value for key, value in self.headers.items()}
                status, out_headers, out_body = proxy._answer(
                    self.command, self.path, headers, body
                )
                self.send_response(status)
                for key, value in out_headers.items():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                declared = out_headers.get("Content-Length")
                if self.command == "HEAD" and declared is not None:
                    self.send_header("Content-Length", declared)
                else:
                    self.send_header("Content-Length", str(len(out_body)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(out_body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up (a timeout test): nothing to tell it

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.seen.append(SeenRequest(method, path, headers, time.monotonic()))
            routes = list(self.routes)
            for fault in self.faults:
                if not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault.status, dict(fault.headers), fault.body
        for route in routes:
            answer = route(method, path, headers, body)
            if answer is not None:
                return answer
        if self.upstream is None:
            return 502, {"Content-Type": "text/plain"}, b"no route"
        return self._forward(method, path, headers, body)

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.upstream is not None
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=30
        )
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            forwarded["Host"] = self.upstream.netloc
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            out = {key: value for key, value in response.getheaders()}
            return response.status, out, data
        finally:
            connection.close()
