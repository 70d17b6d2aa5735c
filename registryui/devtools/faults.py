"""A small HTTP server that injects faults a real registry cannot produce on demand.

``FaultProxy`` forwards every request unchanged to a real registry, except those matching a
``Fault`` (a 503 storm, a 429 with ``Retry-After``, a catalog that breaks on its second page),
which it answers itself, or spoils: ``reset()`` drops the connection without an answer,
``truncate()`` cuts the real answer's body short, ``rewrite()`` passes the real answer through
a function (``drop_repository``: a catalog page that leaves a name out; ``null_tags``: a tag
list saying ``"tags": null``; ``digest_header``: a ``Docker-Content-Digest`` naming another
image). Without an upstream it is a bare fake server that answers only what its faults and
routes say (502 otherwise). It records every request it saw, with headers.

Use it only where a real registry cannot show the behaviour; everything else is tested
against ``RegistryProcess``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: (method, path with query, headers, body) → (status, headers, body), or None to pass on.
Route = Callable[[str, str, dict[str, str], bytes], "tuple[int, dict[str, str], bytes] | None"]
#: (status, headers, body) of the real answer → what the client gets instead.
Transform = Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

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
    #: "answer" (``status``, ``headers``, ``body``), "reset" (close the connection without
    #: an answer, with SO_LINGER 0 so that the close is abrupt), "truncate" (the real answer
    #: with half its body, then close) or "rewrite" (the real answer through ``transform``).
    action: str = "answer"
    transform: Transform | None = None
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

    def reset(self, **options) -> Fault:
        """Matching requests get their connection reset (RST) before any answer."""
        return self.fail(0, action="reset", **options)

    def truncate(self, **options) -> Fault:
        """Matching requests get the real headers and half the real body, then a close."""
        return self.fail(0, action="truncate", **options)

    def rewrite(self, transform: Transform, **options) -> Fault:
        """Matching requests get the real answer as changed by ``transform``."""
        return self.fail(0, action="rewrite", transform=transform, **options)

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
                action, (status, out_headers, out_body) = proxy._answer(
                    self.command, self.path, headers, body
                )
                if action == "reset":
                    # SO_LINGER 0: closing sends RST instead of FIN, as a crashed peer would.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if action == "truncate" and self.command != "HEAD":
                    self.close_connection = True
                    out_headers = {**out_headers, "Content-Length": str(len(out_body))}
                    out_body = out_body[: len(out_body) // 2]
                    self.send_response(status)
                    for key, value in out_headers.items():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    self.end_headers()
                    with contextlib.suppress(OSError):
                        self.wfile.write(out_body)
                    return
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
    ) -> tuple[str, tuple[int, dict[str, str], bytes]]:
        """(action, answer): the action is "answer", "reset" or "truncate"."""
        chosen: Fault | None = None
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
                chosen = fault
                break
        if chosen is not None and chosen.action == "answer":
            return "answer", (chosen.status, dict(chosen.headers), chosen.body)
        if chosen is not None and chosen.action == "reset":
            return "reset", (0, {}, b"")
        answer = None
        for route in routes:
            answer = route(method, path, headers, body)
            if answer is not None:
                break
        if answer is None:
            if self.upstream is None:
                answer = 502, {"Content-Type": "text/plain"}, b"no route"
            else:
                answer = self._forward(method, path, headers, body)
        if chosen is not None and chosen.action == "rewrite":
            assert chosen.transform is not None
            answer = chosen.transform(*answer)
        truncated = chosen is not None and chosen.action == "truncate"
        return ("truncate" if truncated else "answer"), answer

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


# -- ready-made rewrites ------------------------------------------------------------------------


def _json_body(body: bytes, change: Callable[[dict], None]) -> bytes:
    document = json.loads(body)
    change(document)
    return json.dumps(document).encode()


def drop_repository(name: str) -> Transform:
    """A catalog page that leaves ``name`` out (a faulty proxy, or a registry mid-restore)."""

    def transform(status: int, headers: dict[str, str], body: bytes):
        if status != 200:
            return status, headers, body

        def change(document: dict) -> None:
            document["repositories"] = [n for n in document.get("repositories") or [] if n != name]

        return status, headers, _json_body(body, change)

    return transform


def null_tags(status: int, headers: dict[str, str], body: bytes):
    """A tag list that says ``"tags": null`` (what 2.8 answers once every tag is deleted)."""
    if status != 200:
        return status, headers, body
    return status, headers, _json_body(body, lambda document: document.update(tags=None))


def digest_header(digest: str) -> Transform:
    """A manifest answer whose ``Docker-Content-Digest`` names ``digest`` instead."""

    def transform(status: int, headers: dict[str, str], body: bytes):
        if status == 200:
            headers = {k: v for k, v in headers.items() if k.lower() != "docker-content-digest"}
            headers["Docker-Content-Digest"] = digest
        return status, headers, body

    return transform
