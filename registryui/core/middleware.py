"""Security middleware: trusted proxy headers, Content-Security-Policy and Permissions-Policy.

``TrustedProxyMiddleware`` runs first. Behind a reverse proxy the scheme (for the HTTPS
redirect, secure cookies and HSTS) and the client's address (audit log, login throttling)
come from ``X-Forwarded-Proto`` and ``X-Forwarded-For``; anyone can send those headers, so
they are believed only when the connection comes from an address in ``FORWARDED_ALLOW_IPS``
(the same variable, and the same default, as gunicorn's ``forwarded_allow_ips``).

``SecurityHeadersMiddleware`` adds the Content-Security-Policy (no inline scripts or styles,
nothing from other origins) and a Permissions-Policy that turns off browser features the UI
never uses. It sits before WhiteNoise so that static files get the headers too.

``RejectUnsafeInputMiddleware`` answers 400 to any request whose path, query string or form
holds a NUL character or bytes that are not UTF-8 (lone surrogates, overlong sequences). No view
can do anything useful with them, PostgreSQL refuses NUL in any string, and checking them once
here spares every view, form and admin page (the autocomplete's ``term``) its own check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import BadRequest, ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Request headers only a trusted proxy may set (as they appear in ``request.META``).
PROXY_HEADERS = (
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_FORWARDED_PROTOCOL",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


class TrustedProxies:
    """The addresses allowed to tell us the scheme and the client: ``*`` or IPs and networks."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.trust_all = False
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self.trust_all = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network "
                    "(use e.g. 127.0.0.1,10.0.0.0/8 or *)."
                ) from None

    def __contains__(self, address: IPAddress | None) -> bool:
        # A connection without an IP address (a UNIX socket) comes from the local proxy;
        # gunicorn trusts those too.
        if address is None or self.trust_all:
            return True
        return any(address in network for network in self.networks)


def parse_address(text: str) -> IPAddress | None:
    """An address from a header entry: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``, ``[::1]:80``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_from_forwarded_for(header: str, trusted: TrustedProxies) -> IPAddress | None:
    """The client in an ``X-Forwarded-For`` chain that our trusted proxies appended to.

    Each proxy appends the address it saw, so the chain is read from the right: the first
    address that is not one of our proxies is the client (entries to its left were written by
    the client itself and prove nothing). With ``*`` every address is "ours", so we take the
    last entry, the one the nearest proxy wrote. An unreadable entry ends the walk: we then
    know nothing for sure and keep the connection's address.
    """
    entries = [entry for entry in header.split(",") if entry.strip()]
    if not entries:
        return None
    if trusted.trust_all:
        return parse_address(entries[-1])
    address = None
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            return None
        if address not in trusted:
            return address
    return address  # every hop was one of our proxies: the leftmost is the client


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.trusted = TrustedProxies(getattr(settings, "FORWARDED_ALLOW_IPS", ()))
        names = set(PROXY_HEADERS)
        ssl_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if ssl_header:
            names.add(ssl_header[0])
        self.proxy_headers = tuple(sorted(names))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = parse_address(meta.get("REMOTE_ADDR") or "")
        peer_is_socket = not meta.get("REMOTE_ADDR")
        if peer_is_socket or (peer is not None and peer in self.trusted):
            client = client_from_forwarded_for(meta.get("HTTP_X_FORWARDED_FOR", ""), self.trusted)
            if client is not None:
                meta["REMOTE_ADDR"] = str(client)
        else:
            # Not from our proxy: whatever these headers claim, the client wrote them.
            for name in self.proxy_headers:
                meta.pop(name, None)
        return self.get_response(request)


def build_policy(directives: Mapping[str, Iterable[str]] | str) -> str:
    """``{"default-src": ["'self'"], ...}`` → ``default-src 'self'; ...`` (a string passes)."""
    if isinstance(directives, str):
        return directives
    parts = []
    for name, sources in directives.items():
        values = " ".join(sources)
        parts.append(f"{name} {values}" if values else name)
    return "; ".join(parts)


class SecurityHeadersMiddleware:
    """Content-Security-Policy (enforced, or report-only) and Permissions-Policy.

    A view that needs a different policy sets the header itself; we only fill in what is
    missing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        self.csp = build_policy(policy) if policy else ""
        self.csp_header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )
        self.permissions_policy = getattr(settings, "PERMISSIONS_POLICY", "")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.csp and not (
            "Content-Security-Policy" in response
            or "Content-Security-Policy-Report-Only" in response
        ):
            response.headers[self.csp_header] = self.csp
        if self.permissions_policy:
            response.headers.setdefault("Permissions-Policy", self.permissions_policy)
        return response


#: Form bodies checked byte by byte; anything else (JSON, uploads) is read by its own parser.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def unsafe_text(raw: bytes) -> str:
    """Why ``raw`` (decoded URL bytes) is refused, or ``""``: NUL, or not UTF-8.

    Python's strict UTF-8 decoder refuses encoded surrogates (``%ED%A0%80``) and overlong
    forms (``%C0%AF``) as well as truncated sequences, which is the rule we want.
    """
    if b"\x00" in raw:
        return "a NUL character"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes that are not UTF-8 text"
    return ""


def unsafe_form(encoded: bytes) -> str:
    """Like ``unsafe_text`` for a query string or urlencoded body (``+`` is a space)."""
    return unsafe_text(unquote_to_bytes(encoded.replace(b"+", b" ")))


class RejectUnsafeInputMiddleware:
    """400 for NUL or undecodable input in the path, the query string or a form body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = self.problem(request)
        if not problem:
            return self.get_response(request)
        message = f"The request was refused: it contains {problem}."
        if "text/html" not in request.headers.get("Accept", ""):
            # Machine clients (docker login at /auth/token, the registry's notifications) read
            # errors in the Distribution format, not a page.
            return JsonResponse(
                {"errors": [{"code": "INVALID_REQUEST", "message": message}]}, status=400
            )
        # Raised, not returned: Django's handler400 renders the site's 400 page.
        raise BadRequest(message)

    @staticmethod
    def problem(request: HttpRequest) -> str:
        # Django decodes the path and re-percent-encodes the bytes that are not UTF-8
        # (``%ED%A0%80`` stays as those nine characters), so decoding once more finds them.
        # No URL of ours holds a "%", so a path typed with "%25ED..." is refused alike.
        where = unsafe_text(unquote_to_bytes(request.path_info))
        if where:
            return f"{where} in the address"
        where = unsafe_form(request.META.get("QUERY_STRING", "").encode("latin-1", "replace"))
        if where:
            return f"{where} in the query string"
        content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if request.method == "POST" and content_type == FORM_CONTENT_TYPE:
            where = unsafe_form(request.body)
            if where:
                return f"{where} in the form"
        elif request.method == "POST" and content_type == "multipart/form-data":
            # Multipart fields are decoded by Django with replacement characters; only NUL
            # survives that, so it is the one thing left to look for.
            for values in request.POST.lists():
                if any("\x00" in item for item in (values[0], *values[1])):
                    return "a NUL character in the form"
        return ""
