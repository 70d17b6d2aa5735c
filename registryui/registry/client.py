"""A small, strict client of the Distribution HTTP API v2 (registry 2.8 and 3.x).

One ``requests.Session`` per client with a connection pool sized for the sync's concurrency,
fixed timeouts, urllib3 retries with backoff on 429/502/503/504 (honouring ``Retry-After``)
and on connections reset before an answer, our own retries of bodies cut short (a reset or a
close mid-body, which urllib3 does not retry), anonymous, Basic or Bearer-token
authentication, and one exception type: ``RegistryError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import quote, urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as TimeoutStateError
from urllib3.util.retry import Retry

from . import mediatypes
from .errors import RegistryError


def _package_version() -> str:
    try:
        return metadata.version("registryui")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0"


#: Distinctive, so that a registry operator can tell our traffic apart in the access log.
#: Every request of this UI's client starts its User-Agent so: how the notification endpoints
#: tell the UI's own pushes, deletes and pulls from everyone else's.
USER_AGENT_PREFIX = "registryui/"
USER_AGENT = f"{USER_AGENT_PREFIX}{_package_version()} python-requests/{requests.__version__}"
#: In token mode, the subject of the tokens this client is issued (``tokens.principals``): the
#: account the registry names (``actor.name``) in the events of the UI's own requests.
APP_SUBJECT = "registryui$app"
#: Manifests are capped at 4 MiB by the registry itself; image configs are small JSON files.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
#: What ``stream_blob`` reads and yields at a time.
STREAM_CHUNK_BYTES = 64 * 1024
MAX_CATALOG_PAGE = 1000  # registry 2.8 answers 400 PAGINATION_NUMBER_INVALID above maxentries

_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class ManifestRef:
    """What a manifest HEAD tells: the digest, the stored media type and the size in bytes."""

    digest: str
    media_type: str
    size: int


class RequestStats:
    """Thread-safe counts of the requests a client made, by kind (``manifest_head``, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def __getitem__(self, kind: str) -> int:
        with self._lock:
            return self._counts[kind]


class _Retry(Retry):
    """urllib3's Retry, with ``Retry-After`` capped so that a registry cannot park a worker."""

    MAX_RETRY_AFTER = 30.0

    def get_retry_after(self, response):  # type: ignore[override]
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.MAX_RETRY_AFTER)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        key.lower(): (quoted if quoted is not None and quoted != "" else bare or "")
        for key, quoted, bare in _CHALLENGE_PARAM_RE.findall(rest)
    }
    return scheme.lower(), params


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _verify_digest(data: bytes, digest: str) -> None:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise RegistryError(
            "The registry sent content that does not match its digest.",
            code="INVALID_RESPONSE",
            detail=f"expected {digest}, got {algorithm}:{actual}",
        )


#: The clock of token lifetimes and the pause between body retries (tests replace them).
_now = time.monotonic
_sleep = time.sleep
#: Methods whose request may be sent again after a failure (as urllib3's allowed_methods).
_REPEATABLE = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS"})


def _oversized(max_bytes: int) -> RegistryError:
    return RegistryError(
        "The registry sent a document larger than we accept.",
        code="INVALID_RESPONSE",
        detail=f"more than {max_bytes} bytes",
    )


class BlobStream:
    """A blob's body as it comes (``RegistryClient.stream_blob``): iterate it once, then (or
    instead) ``close()`` it to give the connection back.

    ``length``: the Content-Length the registry announced (None if it sent none). Iterating
    yields the chunks, and raises RegistryError (INVALID_RESPONSE) as soon as the body is
    longer than ``max_bytes`` or than ``size``, and at its end if it is shorter than ``size``
    or does not match its digest; UNREACHABLE if the connection breaks. The last chunk is
    held back until the whole body matched: a reader that announced the length to its own
    client (a download) never hands it a complete body that is wrong.
    """

    def __init__(
        self,
        response: requests.Response,
        digest: str,
        max_bytes: int,
        size: int | None,
        length: int | None,
        chunk_size: int,
    ) -> None:
        self._response = response
        self.digest = digest
        self.max_bytes = max_bytes
        self.size = size
        self.length = length
        self.chunk_size = chunk_size
        #: Bytes read from the registry so far.
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        algorithm, _, expected = self.digest.partition(":")
        hasher = hashlib.new(algorithm) if algorithm in ("sha256", "sha384", "sha512") else None
        limit = self.max_bytes if self.size is None else min(self.max_bytes, self.size)
        held = b""
        try:
            for chunk in self._response.iter_content(self.chunk_size):
                self.read += len(chunk)
                if self.read > limit:
                    if self.read > self.max_bytes:
                        raise _oversized(self.max_bytes)
                    raise RegistryError.from_code(
                        "INVALID_RESPONSE", detail=f"more than the {self.size} bytes described"
                    )
                if hasher is not None:
                    hasher.update(chunk)
                if held:
                    yield held
                held = chunk
        except requests.RequestException as exc:
            raise RegistryError.from_code(
                "UNREACHABLE", detail=f"the answer was cut short: {_short(exc)}"
            ) from exc
        finally:
            self.close()
        if self.size is not None and self.read != self.size:
            raise RegistryError.from_code(
                "INVALID_RESPONSE", detail=f"{self.read} bytes, the descriptor says {self.size}"
            )
        if hasher is not None and hasher.hexdigest() != expected:
            raise RegistryError(
                "The registry sent content that does not match its digest.",
                code="INVALID_RESPONSE",
                detail=f"expected {self.digest}, got {algorithm}:{hasher.hexdigest()}",
            )
        if held:
            yield held

    def close(self) -> None:
        self._response.close()


class _BodyCutShort(Exception):
    """The connection broke while a body was read; ``_get_body`` retries it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class _Token:
    token: str
    expires: float  # on the _now() clock
    challenge: dict[str, str]  # realm, service and scope it was issued for


#: (challenge parameters) -> (token, lifetime in seconds); see RegistryClient(token_provider=…).
TokenProvider = Callable[[dict[str, str]], tuple[str, int]]


class RegistryClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str = "",
        password: str = "",
        pool_size: int = 8,
        connect_timeout: float = 3.05,
        read_timeout: float = 30.0,
        retries: int = 3,
        backoff_factor: float = 0.25,
        token_provider: TokenProvider | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.username = username
        self.password = password
        self.timeout = (connect_timeout, read_timeout)
        #: Hooks of a page's time budget (``registryui.catalog.upstream.interactive``):
        #: ``before_send(timeout)`` returns the (connect, read) timeouts of the next request or
        #: raises RegistryError to answer at once; ``after_failure(error)`` hears of each
        #: transport failure. None (the default, and the sync's): the fixed timeouts above.
        self.before_send: Callable[[tuple[float, float]], tuple[float, float]] | None = None
        self.after_failure: Callable[[RegistryError], None] | None = None
        #: Called before each request is sent (each try): a rate limit such as
        #: ``ratelimit.TokenBucket.acquire`` (the sync's ``SYNC_MAX_RPS``) waits there.
        self.throttle: Callable[[], None] | None = None
        self.token_provider = token_provider
        self.retries = retries
        self.backoff_factor = backoff_factor
        self.stats = RequestStats()
        self._tokens: dict[str, _Token] = {}
        self._tokens_lock = threading.Lock()
        self._scope_locks: dict[str, threading.Lock] = {}
        self._retry = _Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_factor,
            backoff_max=10,
            status_forcelist=(429, 502, 503, 504),
            # POST and PATCH start or continue uploads: repeating them is not safe.
            allowed_methods=frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # With trust_env, requests scans the whole environment for proxy settings and looks for
        # ~/.netrc on every request: about a quarter of a HEAD's client CPU here. Read the
        # environment once instead: the proxy for the registry's URL (NO_PROXY honoured) and a
        # CA bundle. Credentials come from settings, never from .netrc.
        self.session.trust_env = False
        self.session.proxies = _proxies_for(self.base_url)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle
        self.pool_size = 0
        self.ensure_pool_size(pool_size)

    def ensure_pool_size(self, size: int) -> None:
        """Grow the connection pool to at least ``size`` connections (it never shrinks).

        The pool must hold one connection per concurrent worker, or requests would open and
        drop connections under load (urllib3 warns "Connection pool is full"). Call it before
        the workers start: requests already running keep the adapter they started with.
        """
        size = max(size, 1)
        if size <= self.pool_size:
            return
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=self._retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.pool_size = size

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ------------------------------------------------------------------------------

    def ping(self) -> dict[str, str]:
        """``GET /v2/``: returns the API version header the registry sends."""
        response = self._request("GET", "v2/", kind="ping", scope="")
        return {"api_version": response.headers.get("Docker-Distribution-API-Version", "")}

    def iter_catalog(self, page_size: int = MAX_CATALOG_PAGE) -> Iterator[list[str]]:
        """Yield the catalog page by page, following the relative ``Link`` header."""
        if not 1 <= page_size <= MAX_CATALOG_PAGE:
            raise ValueError(f"page_size must be within 1..{MAX_CATALOG_PAGE}")
        url: str | None = f"v2/_catalog?n={page_size}"
        seen: set[str] = set()
        while url:
            seen.add(urljoin(self.base_url, url))
            response = self._request("GET", url, kind="catalog", scope="registry:catalog:*")
            payload = self._json(response)
            yield _strings(payload.get("repositories"), "repositories")
            url = self._next_link(response, seen)

    def list_tags(self, name: str) -> list[str]:
        """All tags of a repository; ``tags: null`` (every tag deleted) is an empty list.

        2.8 does not paginate this call; 3.x does, with ``Link``: both are followed.
        """
        tags: list[str] = []
        url: str | None = f"v2/{_path(name)}/tags/list"
        seen: set[str] = set()
        while url:
            seen.add(urljoin(self.base_url, url))
            response = self._request("GET", url, kind="tags", scope=f"repository:{name}:pull")
            payload = self._json(response)
            tags.extend(_strings(payload.get("tags"), "tags"))
            url = self._next_link(response, seen)
        return list(dict.fromkeys(tags))

    def head_manifest(self, name: str, reference: str) -> ManifestRef:
        response = self._request(
            "HEAD",
            f"v2/{_path(name)}/manifests/{reference}",
            kind="manifest_head",
            scope=f"repository:{name}:pull",
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
        )
        return self._manifest_ref(response, reference, b"")

    def get_manifest(self, name: str, reference: str) -> tuple[ManifestRef, bytes]:
        """The manifest's exact bytes and what they are, checked against its bytes: against
        the digest asked for, or (by tag) against the ``Docker-Content-Digest`` it came with.
        By tag, the returned digest is always the one its bytes have."""
        response, body = self._get_body(
            f"v2/{_path(name)}/manifests/{reference}",
            kind="manifest_get",
            scope=f"repository:{name}:pull",
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
        )
        ref = self._manifest_ref(response, reference, body)
        if ":" in reference:
            _verify_digest(body, reference)
        elif ref.media_type not in mediatypes.SCHEMA1_TYPES:
            # A header naming another image would make the tag point at it: the bytes decide.
            # (A signed schema 1 manifest's digest is of its payload without the signatures,
            # not of the bytes served; nothing here reads schema 1.)
            _verify_digest(body, ref.digest)
        return ref, body

    def list_referrers(self, name: str, digest: str) -> list[dict[str, Any]]:
        """``GET /v2/<name>/referrers/<digest>`` (OCI distribution 1.1): the descriptors of
        the manifests whose ``subject`` is ``digest``. A registry without the API (2.8, 3.x
        up to 3.1) answers 404: a ``RegistryError`` with ``status`` 404. The spec forbids
        a 404 from a registry that has the API, even for an unknown digest."""
        _, body = self._get_body(
            f"v2/{_path(name)}/referrers/{digest}",
            kind="referrers",
            scope=f"repository:{name}:pull",
            headers={"Accept": mediatypes.OCI_INDEX},
        )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise RegistryError.from_code("INVALID_RESPONSE", detail="not JSON") from exc
        manifests = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(manifests, list):
            raise RegistryError.from_code("INVALID_RESPONSE", detail="not an image index")
        return [entry for entry in manifests if isinstance(entry, dict)]

    def get_blob(self, name: str, digest: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        _, body = self._get_body(
            f"v2/{_path(name)}/blobs/{digest}",
            kind="blob_get",
            scope=f"repository:{name}:pull",
            max_bytes=max_bytes,
        )
        _verify_digest(body, digest)
        return body

    def stream_blob(
        self,
        name: str,
        digest: str,
        *,
        max_bytes: int,
        size: int | None = None,
        chunk_size: int = STREAM_CHUNK_BYTES,
    ) -> BlobStream:
        """A blob read a chunk at a time, never held whole: for a download passed on as it
        comes. The answer's status and length are checked here (a RegistryError before any
        byte is read: unknown blob, announced length above ``max_bytes`` or other than
        ``size``); the body's size and digest as it is iterated (see ``BlobStream``). A body
        cut short is not read again: what went on already cannot be taken back."""
        response = self._request(
            "GET",
            f"v2/{_path(name)}/blobs/{digest}",
            kind="blob_get",
            scope=f"repository:{name}:pull",
            stream=True,
        )
        announced = response.headers.get("Content-Length", "")
        length = int(announced) if announced.isdigit() else None
        if length is not None and length > max_bytes:
            response.close()
            raise _oversized(max_bytes)
        if length is not None and size is not None and length != size:
            response.close()
            raise RegistryError.from_code(
                "INVALID_RESPONSE", detail=f"{length} bytes announced, the descriptor says {size}"
            )
        return BlobStream(response, digest, max_bytes, size, length, chunk_size)

    def blob_exists(self, name: str, digest: str) -> bool:
        try:
            self._request(
                "HEAD",
                f"v2/{_path(name)}/blobs/{digest}",
                kind="blob_head",
                scope=f"repository:{name}:pull",
            )
        except RegistryError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Link a blob that ``source`` holds into ``name`` without uploading it again.

        True when the registry mounted it; False when it could not (the blob is not in
        ``source``), in which case the upload the registry opened instead is cancelled.
        """
        response = self._request(
            "POST",
            f"v2/{_path(name)}/blobs/uploads/?mount={quote(digest)}&from={quote(source, safe='/')}",
            kind="blob_mount",
            scope=f"repository:{name}:pull,push repository:{source}:pull",
            expect=(201, 202),
        )
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            try:
                self._request(
                    "DELETE",
                    location,
                    kind="blob_upload",
                    scope=f"repository:{name}:pull,push",
                    expect=(204, 200, 202, 404),
                )
            except RegistryError:  # the registry purges abandoned uploads on its own
                pass
        return False

    def upload_blob(self, name: str, data: bytes) -> str:
        """Upload ``data`` as a blob (POST then a single PUT) unless it is already there."""
        digest = sha256_digest(data)
        if self.blob_exists(name, digest):
            return digest
        scope = f"repository:{name}:pull,push"
        started = self._request(
            "POST",
            f"v2/{_path(name)}/blobs/uploads/",
            kind="blob_upload",
            scope=scope,
            expect=(202,),
        )
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(
                "The registry did not say where to upload.", code="INVALID_RESPONSE"
            )
        separator = "&" if "?" in location else "?"
        self._request(
            "PUT",
            f"{location}{separator}digest={quote(digest)}",
            kind="blob_upload",
            scope=scope,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return digest

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT exact manifest bytes under a tag or digest; returns the digest the registry gives."""
        response = self._request(
            "PUT",
            f"v2/{_path(name)}/manifests/{reference}",
            kind="manifest_put",
            scope=f"repository:{name}:pull,push",
            data=body,
            headers={"Content-Type": media_type},
            expect=(201,),
        )
        return response.headers.get("Docker-Content-Digest") or sha256_digest(body)

    def delete_manifest(self, name: str, reference: str) -> None:
        self._request(
            "DELETE",
            f"v2/{_path(name)}/manifests/{reference}",
            kind="manifest_delete",
            scope=f"repository:{name}:delete",
            expect=(202, 200, 204),
        )

    # -- transport ----------------------------------------------------------------------------

    def _get_body(
        self,
        url: str,
        *,
        kind: str,
        scope: str,
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> tuple[requests.Response, bytes]:
        """GET a document and read its body, with the body's own retries: urllib3 retries a
        connection that fails before the answer, but not a body cut short (a reset or a close
        mid-transfer), which is as transient and as safe to repeat."""
        attempt = 0
        while True:
            response = self._request(
                "GET", url, kind=kind, scope=scope, headers=headers, stream=True
            )
            try:
                return response, self._read_capped(response, max_bytes)
            except _BodyCutShort as exc:
                if attempt >= self.retries:
                    raise RegistryError.from_code(
                        "UNREACHABLE", detail=f"the answer was cut short: {exc.detail}"
                    ) from exc
            attempt += 1
            self._pause(attempt)

    def _pause(self, attempt: int) -> None:
        """Back off before retry number ``attempt`` (1, 2, ...), as urllib3 does: the first
        retry at once, then backoff_factor x 2^n, at most 10 s."""
        if attempt > 1 and self.backoff_factor > 0:
            _sleep(min(self.backoff_factor * 2 ** (attempt - 1), 10.0))

    def _request(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        scope: str,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
        expect: tuple[int, ...] = (200,),
    ) -> requests.Response:
        full_url = urljoin(self.base_url, url)
        response, sent_token = self._send(method, full_url, kind, scope, headers, data, stream)
        if response.status_code == 401:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if scheme == "bearer" and "realm" in params:
                response.close()
                self._authenticate_bearer(params, cache_key=scope, rejected=sent_token)
                # One more try with the new token, never more: a second 401 is an answer.
                response, _ = self._send(method, full_url, kind, scope, headers, data, stream)
        if response.status_code in expect:
            return response
        raise self._error(response)

    def _send(
        self, method, url, kind, scope, headers, data, stream
    ) -> tuple[requests.Response, str | None]:
        request_headers = dict(headers or {})
        auth = None
        token = self._token_for(scope)
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        elif self.username:
            auth = (self.username, self.password)
        attempt = 0
        while True:
            timeout = self.before_send(self.timeout) if self.before_send else self.timeout
            if self.throttle is not None:
                self.throttle()
            self.stats.add(kind)
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=request_headers,
                    data=data,
                    auth=auth,
                    timeout=timeout,
                    stream=stream,
                    allow_redirects=True,
                )
                return response, token
            except requests.exceptions.ChunkedEncodingError as exc:
                # The body (read here unless streamed) was cut short after the headers came.
                if attempt >= self.retries or method not in _REPEATABLE:
                    raise RegistryError.from_code(
                        "UNREACHABLE", detail=f"the answer was cut short: {_short(exc)}"
                    ) from exc
            except requests.RequestException as exc:
                error = _transport_error(exc)
                if self.after_failure:
                    self.after_failure(error)
                raise error from exc
            attempt += 1
            self._pause(attempt)

    def _cached_token(self, scope: str) -> str | None:
        with self._tokens_lock:
            entry = self._tokens.get(scope)
        if entry and entry.expires > _now():
            return entry.token
        return None

    def _token_for(self, scope: str) -> str | None:
        """The cached token of ``scope``; an expired one is renewed before the request, since
        we know its challenge already (this saves a 401 round trip per scope and expiry)."""
        with self._tokens_lock:
            entry = self._tokens.get(scope)
        if entry is None:
            return None
        if entry.expires > _now():
            return entry.token
        challenge = {key: value for key, value in entry.challenge.items() if key != "error"}
        self._authenticate_bearer(challenge, cache_key=scope, rejected=None)
        return self._cached_token(scope)

    def _authenticate_bearer(
        self, challenge: dict[str, str], *, cache_key: str, rejected: str | None
    ) -> None:
        if challenge.get("error") == "insufficient_scope" and rejected:
            # The token server already gave us all it will for this scope: asking again
            # would loop. It is a permission error, not something to retry.
            raise RegistryError.from_code("DENIED", status=401, detail=challenge.get("scope", ""))
        with self._tokens_lock:
            scope_lock = self._scope_locks.setdefault(cache_key, threading.Lock())
        # One token request per scope, however many workers were refused at the same moment.
        with scope_lock:
            current = self._cached_token(cache_key)
            if current and current != rejected:
                return  # another worker fetched a fresh token while this one waited
            if self.token_provider is not None:
                token, lifetime = self.token_provider(challenge)
            else:
                token, lifetime = self._fetch_token(challenge)
            # Keep a margin so that a token is never presented in its last seconds.
            expires = _now() + max(lifetime - 10, 1)
            with self._tokens_lock:
                self._tokens[cache_key] = _Token(token, expires, dict(challenge))

    def _fetch_token(self, challenge: dict[str, str]) -> tuple[str, int]:
        params: list[tuple[str, str]] = []
        if challenge.get("service"):
            params.append(("service", challenge["service"]))
        for scope in challenge.get("scope", "").split(" "):
            if scope:
                params.append(("scope", scope))
        auth = (self.username, self.password) if self.username else None
        self.stats.add("token")
        try:
            response = self.session.get(
                challenge["realm"],
                params=params,
                auth=auth,
                timeout=self.before_send(self.timeout) if self.before_send else self.timeout,
                # The token server may be another host, with its own proxy (or none).
                proxies=_proxies_for(challenge["realm"]),
            )
        except requests.RequestException as exc:
            raise RegistryError(
                "The registry's token server cannot be reached.",
                code="UNREACHABLE",
                detail=_short(exc),
            ) from exc
        if response.status_code in (401, 403):
            raise RegistryError(
                "The registry's token server refused our credentials.",
                code="UNAUTHORIZED",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise RegistryError(
                f"The registry's token server answered HTTP {response.status_code}.",
                code="UNAVAILABLE",
                status=response.status_code,
            )
        payload = self._json(response)
        token = payload.get("token") or payload.get("access_token")
        if not token:
            raise RegistryError("The token server sent no token.", code="INVALID_RESPONSE")
        try:
            lifetime = int(payload.get("expires_in") or 60)
        except (TypeError, ValueError):
            lifetime = 60
        return token, lifetime

    def _error(self, response: requests.Response) -> RegistryError:
        status = response.status_code
        code, detail = "", ""
        if response.request.method != "HEAD":
            try:
                errors = response.json().get("errors") or []
            except ValueError:
                errors = []
            if errors and isinstance(errors[0], dict):
                code = str(errors[0].get("code") or "")
                detail = str(errors[0].get("message") or "")
        response.close()
        if not code:
            path = response.request.path_url or ""
            code = {
                401: "UNAUTHORIZED",
                403: "DENIED",
                404: "MANIFEST_UNKNOWN"
                if "/manifests/" in path
                else "BLOB_UNKNOWN"
                if "/blobs/" in path
                else "NAME_UNKNOWN",
                405: "UNSUPPORTED",
                429: "TOOMANYREQUESTS",
            }.get(status, "UNAVAILABLE" if status >= 500 else "")
        if status == 401:
            _, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if params.get("error") == "insufficient_scope":
                code = "DENIED"
            elif code == "UNAUTHORIZED" and not self.username and self.token_provider is None:
                return RegistryError(
                    "The registry requires credentials and none are configured "
                    "(REGISTRY_USERNAME, REGISTRY_PASSWORD).",
                    code=code,
                    status=status,
                    detail=detail,
                )
        if code:
            return RegistryError.from_code(code, status=status, detail=detail)
        return RegistryError(f"The registry answered HTTP {status}.", status=status, detail=detail)

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError as exc:
            raise RegistryError.from_code("INVALID_RESPONSE", detail="not JSON") from exc
        if not isinstance(payload, dict):
            raise RegistryError.from_code("INVALID_RESPONSE", detail="not a JSON object")
        return payload

    @staticmethod
    def _read_capped(response: requests.Response, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise _oversized(max_bytes)
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise _BodyCutShort(_short(exc)) from exc
        finally:
            response.close()
        return b"".join(chunks)

    @staticmethod
    def _manifest_ref(response: requests.Response, reference: str, body: bytes) -> ManifestRef:
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest:
            if body:
                digest = sha256_digest(body)
            elif ":" in reference:
                digest = reference
            else:
                raise RegistryError(
                    "The registry sent no Docker-Content-Digest header.", code="INVALID_RESPONSE"
                )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if body and media_type in ("", "application/json", "text/plain"):
            media_type = _media_type_from_body(body) or media_type
        try:
            size = int(response.headers.get("Content-Length") or len(body))
        except ValueError:
            size = len(body)
        return ManifestRef(digest=digest, media_type=media_type, size=len(body) or size)

    def _next_link(self, response: requests.Response, seen: set[str]) -> str | None:
        """The next page from ``Link`` (relative in 2.8: joined to the base URL), or None."""
        match = _LINK_RE.search(response.headers.get("Link", ""))
        if not match:
            return None
        url = urljoin(response.url or self.base_url, match.group(1))
        if url in seen:
            # A proxy that sends the same page forever must not keep a sync busy forever.
            raise RegistryError.from_code("INVALID_RESPONSE", detail=f"Link loops back to {url}")
        return url


def _media_type_from_body(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if isinstance(document, dict):
        if document.get("mediaType"):
            return str(document["mediaType"])
        if "manifests" in document:
            return mediatypes.OCI_INDEX
        if "config" in document:
            return mediatypes.OCI_MANIFEST
    return ""


def _proxies_for(url: str) -> dict[str, str | None]:
    """The environment's proxies for ``url`` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY).

    A scheme without a proxy maps to None, so that it also overrides the session's proxies.
    """
    found = requests.utils.get_environ_proxies(url)
    return {scheme: found.get(scheme) for scheme in ("http", "https", "all")}


def _transport_error(exc: requests.RequestException) -> RegistryError:
    """A transport failure as TIMEOUT, UNAVAILABLE or UNREACHABLE.

    requests reports a read timeout whose retries ran out as a ConnectionError wrapping
    urllib3's MaxRetryError: look at the reason, or a slow registry would read as a dead one.
    """
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NewConnectionError):  # a subclass of ConnectTimeoutError in urllib3
        return RegistryError.from_code("UNREACHABLE", detail=_short(exc))
    if isinstance(exc, requests.Timeout) or isinstance(reason, TimeoutError | TimeoutStateError):
        return RegistryError.from_code("TIMEOUT", detail=_short(exc))
    if isinstance(exc, requests.exceptions.RetryError):
        return RegistryError.from_code("UNAVAILABLE", detail=_short(exc))
    return RegistryError.from_code("UNREACHABLE", detail=_short(exc))


def _strings(value: Any, field: str) -> list[str]:
    """A JSON list of names as a list of str; ``null`` (tags all deleted) is empty."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistryError.from_code("INVALID_RESPONSE", detail=f"{field} is not a list of names")
    return value


def _path(name: str) -> str:
    # Repository names are validated against the grammar before they get here; quoting keeps
    # a stray character from turning into a different URL all the same.
    return quote(name, safe="/")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
