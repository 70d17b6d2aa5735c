"""An SBOM as a table of packages, and its raw document as a download.

Both are about the manifest that carries the SBOM (a cosign ``.att``/``.sbom`` or an OCI
referrer); the image's page links to them from its "Attached" section. The table reads the
``SbomPackage`` rows stored at sync time, a page at a time; the download streams the blob
from the registry under the sync's size cap (the UI never keeps the document).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from registryui.catalog.artifacts import unwrap
from registryui.catalog.fetch import MAX_ATTACHED_DOCUMENT_BYTES
from registryui.catalog.upstream import get_client
from registryui.lib.reference import short_digest
from registryui.registry import RegistryError
from registryui.teams.decorators import viewer_required

from .attached import sbom_packages
from .lookup import resolve
from .views import paginate, render_page

PACKAGES_PER_PAGE = 100
#: A filter longer than any package name is refused.
MAX_FILTER = 200


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
    resolved, manifest = _sbom_of(request, reference)
    info = manifest.details["sbom"]
    try:
        body = get_client().get_blob(
            resolved.repository.name, info["blob"], max_bytes=MAX_ATTACHED_DOCUMENT_BYTES
        )
    except RegistryError as exc:
        return render(
            request,
            "catalog/sbom_unavailable.html",
            {"repository": resolved.repository, "manifest": manifest, "error": exc},
            status=502,
        )
    document, extension = unwrap(info.get("media_type", ""), body)
    response = HttpResponse(document, content_type="application/json")
    filename = f"sbom-{short_digest(manifest.digest)}.{info.get('format') or 'sbom'}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
