"""An SBOM as a table of packages, and its raw document as a download.

Both are about the manifest that carries the SBOM (a cosign ``.att``/``.sbom`` or an OCI
referrer); the image's page links to them from its "Attached" section. The table reads the
``SbomPackage`` rows stored at sync time, a page at a time; the download streams the blob
from the registry under the sync's size cap (the UI never keeps the document).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from registryui.catalog.artifacts import DSSE_ENVELOPE, unwrap
from registryui.catalog.fetch import MAX_ATTACHED_DOCUMENT_BYTES
from registryui.catalog.models import Manifest, Repository
from registryui.catalog.upstream import get_client
from registryui.lib.humanize import iec_size
from registryui.lib.reference import short_digest
from registryui.registry import BlobStream, RegistryError
from registryui.teams.decorators import viewer_required

from .attached import sbom_packages
from .lookup import resolve
from .views import paginate, render_page

PACKAGES_PER_PAGE = 100
#: A filter longer than any package name is refused.
MAX_FILTER = 200
#: A document's own media type is its download's Content-Type only when it names JSON (the
#: sync reads JSON SBOMs only); anything else a pusher wrote goes as application/json.
_JSON_TYPE = re.compile(r"(?:application|text)/(?:[a-z0-9][a-z0-9.-]{0,100}\+)?json", re.ASCII)

log = logging.getLogger(__name__)


def _sbom_of(request: HttpRequest, reference: str):
    resolved = resolve(request.user, reference)
    manifest = resolved.manifest
    if manifest is None or not (manifest.details or {}).get("sbom"):
        raise Http404(f"{reference} carries no SBOM.")
    return resolved, manifest


@require_safe
@viewer_required
def sbom(request: HttpRequest, reference: str) -> HttpResponse:
    resolved, manifest = _sbom_of(request, reference)
    query = (request.GET.get("q") or "").strip()[:MAX_FILTER]
    page = paginate(request, sbom_packages(manifest, query), PACKAGES_PER_PAGE)
    context: dict[str, Any] = {
        "repository": resolved.repository,
        "manifest": manifest,
        "sbom": manifest.details["sbom"],
        "subject": manifest.subject_digest,
        "page": page,
        "packages": page.object_list,
        "query": query,
    }
    return render_page(request, "catalog/sbom.html", context, "packages")


@require_safe
@viewer_required
def sbom_download(request: HttpRequest, reference: str) -> HttpResponse:
    """The SBOM's raw document as a file, under the sync's cap (MAX_ATTACHED_DOCUMENT_BYTES).

    A plain document (SPDX or CycloneDX JSON, as ``cosign attach sbom`` or an OCI referrer
    stores it) is streamed from the registry a chunk at a time through the shared client and
    never held whole. Its Content-Length is the size the sync read; ``BlobStream`` checks the
    size and the digest of what passes. The status (200) is sent before the last byte is
    read, so a body that turns out wrong (longer than its size, or not matching its digest)
    or cut short cannot be answered with an error any more: the failure is logged and the
    body stops short of its Content-Length, without the last chunk (``BlobStream`` holds it
    back until the whole body matched), by ``DownloadStopped``, on which the server drops the
    connection. A browser reports such a download as failed; it never saves a wrong file as
    complete.

    An SBOM inside an in-toto DSSE envelope (``cosign attest --type spdxjson``) is served as
    its predicate, decoded: the statement is base64 inside the envelope's JSON, which cannot
    be decoded a chunk at a time, so that document is read whole, under the same cap.
    """
    resolved, manifest = _sbom_of(request, reference)
    info = manifest.details["sbom"]
    media_type = str(info.get("media_type") or "")
    filename = f"sbom-{short_digest(manifest.digest)}.{info.get('format') or 'sbom'}.json"
    if media_type == DSSE_ENVELOPE:
        return _decoded_download(request, resolved.repository, manifest, info, filename)
    size = info.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        size = None
    if size is not None and size > MAX_ATTACHED_DOCUMENT_BYTES:
        return _unavailable(request, resolved.repository, manifest, _too_large())
    try:
        stream = get_client().stream_blob(
            resolved.repository.name,
            info["blob"],
            max_bytes=MAX_ATTACHED_DOCUMENT_BYTES,
            size=size,
        )
    except RegistryError as exc:
        return _unavailable(request, resolved.repository, manifest, _problem(exc))
    content_type = media_type if _JSON_TYPE.fullmatch(media_type) else "application/json"
    response = StreamingHttpResponse(
        _relay(stream, f"{resolved.repository.name}@{manifest.digest}"),
        content_type=content_type,
    )
    length = size if size is not None else stream.length
    if length is not None:
        response["Content-Length"] = str(length)
    return _as_attachment(response, filename)


class DownloadStopped(Exception):
    """Raised out of a download's body once its status was sent: the WSGI server then drops
    the connection, so that the client sees a failed download at once (a body merely ending
    short of its Content-Length would keep a kept-alive connection waiting for the rest)."""


def _relay(stream: BlobStream, where: str) -> Iterator[bytes]:
    """The blob's chunks; a failure half-way stops the body short (see ``sbom_download``)."""
    try:
        yield from stream
    except RegistryError as exc:
        log.warning(
            "The SBOM download of %s stopped after %d bytes: %s (%s)",
            where,
            stream.read,
            exc.message,
            exc.detail,
        )
        raise DownloadStopped(f"{where}: {exc.message}") from exc
    finally:
        stream.close()


def _decoded_download(
    request: HttpRequest,
    repository: Repository,
    manifest: Manifest,
    info: dict[str, Any],
    filename: str,
) -> HttpResponse:
    try:
        body = get_client().get_blob(
            repository.name, info["blob"], max_bytes=MAX_ATTACHED_DOCUMENT_BYTES
        )
    except RegistryError as exc:
        return _unavailable(request, repository, manifest, _problem(exc))
    document, _ = unwrap(DSSE_ENVELOPE, body)
    return _as_attachment(HttpResponse(document, content_type="application/json"), filename)


def _as_attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _too_large() -> str:
    limit = iec_size(MAX_ATTACHED_DOCUMENT_BYTES)
    return f"The document is larger than {limit}, which is not served."


def _problem(exc: RegistryError) -> str:
    if exc.code == "INVALID_RESPONSE" and "more than" in exc.detail:
        return _too_large()
    return f"The registry did not give the document: {exc.message}"


def _unavailable(
    request: HttpRequest, repository: Repository, manifest: Manifest, problem: str
) -> HttpResponse:
    return render(
        request,
        "catalog/sbom_unavailable.html",
        {"repository": repository, "manifest": manifest, "problem": problem},
        status=502,
    )
