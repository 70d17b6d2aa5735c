"""Read endpoints: repositories, tags, manifests, search, the audit log, sync status.

Each answers from the database through the same code as the pages (``browse.lookup``,
``browse.search``, the resolver), so a list, a count or a 404 tells a caller exactly what
the page would tell them.
"""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from registryui.browse.lookup import resolve
from registryui.browse.search import clean_query, search
from registryui.browse.tags import FLAT_SORTS as TAG_SORTS
from registryui.browse.views import REPOSITORY_SORTS, filter_repositories, image_details
from registryui.catalog.freshness import catalog_freshness
from registryui.catalog.models import Manifest, Repository, Tag
from registryui.core.models import AuditEntry
from registryui.lib.reference import reference_url
from registryui.ops.status import status_report
from registryui.teams.models import Level
from registryui.teams.permissions import access_for, visible_repositories, visible_tags

from . import schemas as s
from .cursors import paginate
from .problems import Code, Problem

router = Router()

RepositorySort = Literal[tuple(REPOSITORY_SORTS)]  # type: ignore[valid-type]
TagSort = Literal[tuple(TAG_SORTS)]  # type: ignore[valid-type]
CURSOR_HELP = "next_cursor of the previous page."


def repository_out(repository: Repository) -> dict:
    return {
        "name": repository.name,
        "namespace": repository.namespace,
        "tag_count": repository.tag_count,
        "size": repository.size,
        "last_updated_at": repository.last_updated_at,
        "last_synced_at": repository.last_synced_at,
        "sync_failed": repository.sync_failed,
        "url": repository.get_absolute_url(),
    }


def tag_out(tag: Tag, repository: Repository) -> dict:
    manifest = tag.manifest
    return {
        "repository": repository.name,
        "name": tag.name,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "kind": manifest.kind,
        "size": manifest.total_size,
        "created": manifest.created,
        "platforms": [p for p in manifest.platforms.split(",") if p],
        "changed_at": tag.changed_at,
        "first_seen": tag.first_seen,
        "sync_problem": tag.sync_problem,
        "url": reference_url(repository.name, tag=tag.name),
    }


def resolve_repository(request: HttpRequest, name: str, action: int = Level.VIEW) -> Repository:
    """A repository named in the path (no tag, no digest): 400, 404 or 403 as the pages."""
    resolved = resolve(request.user, name, action)
    if resolved.reference.tag or resolved.reference.digest:
        raise Problem(
            400,
            Code.INVALID_FIELD,
            "Name a repository here, without :tag or @digest.",
            errors=[{"field": "path.name", "message": "A repository name."}],
        )
    return resolved.repository


# -- repositories and tags ------------------------------------------------------------------


class RepositoryFilters(Schema):
    q: str = Field("", max_length=200, description="Part of the name.")
    namespace: str = Field(
        "", max_length=255, description="The first path component; '-' for names without one."
    )
    sort: RepositorySort = "name"
    cursor: str | None = Field(None, max_length=2000, description=CURSOR_HELP)
    limit: int = Field(50, ge=1, le=200, description="Items per page.")


@router.get("/repositories", response=s.RepositoryPage, tags=["repositories"])
def list_repositories(request: HttpRequest, filters: Query[RepositoryFilters]):
    """The repositories you may see, filtered and sorted, a page at a time."""
    query = clean_query(filters.q)
    repositories = filter_repositories(visible_repositories(request.user), query, filters.namespace)
    page = paginate(
        repositories,
        REPOSITORY_SORTS[filters.sort],
        cursor=filters.cursor,
        limit=filters.limit,
        scope=f"repositories|{filters.sort}|{query}|{filters.namespace}",
    )
    return {"items": [repository_out(r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/repositories/{path:name}/-/tags", response=s.TagPage, tags=["repositories"])
def list_tags(
    request: HttpRequest,
    name: str,
    sort: TagSort = "-changed",
    cursor: str | None = Query(None, max_length=2000, description=CURSOR_HELP),
    limit: int = Query(50, ge=1, le=200, description="Items per page."),
):
    """A repository's tags with their digests, sizes, platforms and ages."""
    repository = resolve_repository(request, name)
    tags = (
        visible_tags(request.user, Tag.objects.filter(repository=repository))
        .for_listing()
        .with_pushed_by()
    )
    page = paginate(
        tags,
        TAG_SORTS[sort],
        cursor=cursor,
        limit=limit,
        scope=f"tags|{repository.pk}|{sort}",
    )
    return {
        "items": [tag_out(t, repository) for t in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/repositories/{path:name}", response=s.RepositoryOut, tags=["repositories"])
def get_repository(request: HttpRequest, name: str):
    return repository_out(resolve_repository(request, name))


# -- manifests ------------------------------------------------------------------------------


def manifest_out(repository: Repository, manifest: Manifest, tag: Tag | None) -> dict:
    """A manifest with its platforms (layers), config, labels and tags.

    Further sections (an image's referrers: signatures, SBOMs) are added here as keys of the
    document and fields of ``schemas.ManifestOut``.
    """
    images, attestations = image_details(manifest)
    config = manifest.config or {}
    return {
        "repository": repository.name,
        "tag": tag.name if tag is not None else None,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "kind": manifest.kind,
        "size": manifest.size,
        "total_size": manifest.total_size,
        "created": manifest.created,
        "platforms": [
            {
                "platform": image.platform,
                "os": image.manifest.os,
                "architecture": image.manifest.architecture,
                "variant": image.manifest.variant,
                "digest": image.manifest.digest,
                "size": image.total,
                "created": image.manifest.created,
                "layers": [
                    {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type}
                    for layer in image.layers
                ],
            }
            for image in images
        ],
        "attestations": [
            {"digest": entry.child.digest, "media_type": entry.child.media_type}
            for entry in attestations
        ],
        "config_digest": manifest.config_digest,
        "config": config if isinstance(config, dict) else {},
        "labels": {str(k): str(v) for k, v in (manifest.labels or {}).items()},
        "tags": sorted(repository.tags.filter(manifest=manifest).values_list("name", flat=True)),
        "url": reference_url(repository.name, digest=manifest.digest),
    }


@router.get("/manifests/{path:reference}", response=s.ManifestOut, tags=["manifests"])
def get_manifest(request: HttpRequest, reference: str):
    """``NAME:TAG`` or ``NAME@DIGEST``: the image or index with its platforms and layers."""
    resolved = resolve(request.user, reference)
    if resolved.manifest is None:
        raise Problem(
            400,
            Code.INVALID_FIELD,
            "Name an image: NAME:TAG or NAME@DIGEST.",
            errors=[{"field": "path.reference", "message": "NAME:TAG or NAME@DIGEST."}],
        )
    return manifest_out(resolved.repository, resolved.manifest, resolved.tag)


# -- search ---------------------------------------------------------------------------------


def _hit(hit) -> dict:
    return {
        "repository": hit.repository,
        "digest": hit.digest,
        "kind": hit.kind,
        "platforms": hit.platforms,
        "tags": hit.tags,
        "label_key": hit.label_key,
        "label_value": hit.label_value,
        "url": hit.url,
    }


@router.get("/search", response=s.SearchOut, tags=["search"])
def search_catalog(request: HttpRequest, q: str = Query("", max_length=1000)):
    """The search of the site: repositories, tags, digests (prefixes) and label values."""
    results = search(request.user, q)
    return {
        "query": results.query,
        "exact": results.exact or None,
        "repositories": [r.name for r in results.repositories],
        "more_repositories": results.more_repositories,
        "tags": [
            {
                "repository": t.repository.name,
                "tag": t.name,
                "digest": t.manifest.digest,
                "url": reference_url(t.repository.name, tag=t.name),
            }
            for t in results.tags
        ],
        "more_tags": results.more_tags,
        "digests": [_hit(h) for h in results.digests],
        "more_digests": results.more_digests,
        "labels": [_hit(h) for h in results.labels],
        "more_labels": results.more_labels,
        "notes": results.notes,
    }


# -- audit log (staff) ----------------------------------------------------------------------


class AuditFilters(Schema):
    repository: str = Field("", max_length=255)
    action: AuditEntry.Action | None = None
    cursor: str | None = Field(None, max_length=2000, description=CURSOR_HELP)
    limit: int = Field(50, ge=1, le=200, description="Items per page.")


def staff_required(request: HttpRequest) -> None:
    if not getattr(request.user, "is_staff", False):
        raise Problem(403, Code.FORBIDDEN, "Only staff may read this.")


@router.get("/audit", response=s.AuditPage, tags=["audit"])
def list_audit(request: HttpRequest, filters: Query[AuditFilters]):
    """Staff only, newest first. A superuser reads every entry; other staff read the entries
    about repositories they may see (never sign-ins, teams or other people's tokens)."""
    staff_required(request)
    entries = AuditEntry.objects.all()
    q = access_for(request.user).q(Level.VIEW, field="repository")
    if not request.user.is_superuser:
        entries = entries.exclude(repository="").filter(q if q is not None else Q())
    if filters.repository:
        entries = entries.filter(repository=filters.repository)
    if filters.action:
        entries = entries.filter(action=filters.action)
    page = paginate(
        entries,
        ("-created_at", "-id"),
        cursor=filters.cursor,
        limit=filters.limit,
        scope=f"audit|{filters.repository}|{filters.action or ''}",
    )
    return {
        "items": [
            {
                "id": e.pk,
                "created_at": e.created_at,
                "actor": e.actor_name,
                "via": e.via,
                "action": e.action,
                "repository": e.repository,
                "reference": e.reference,
                "digest": e.digest,
                "result": e.result,
                "message": e.message,
                "details": e.details if isinstance(e.details, dict) else {},
            }
            for e in page.items
        ],
        "next_cursor": page.next_cursor,
    }


# -- sync status ----------------------------------------------------------------------------


@router.get("/sync", response=s.SyncOut, tags=["sync"])
def sync_status(request: HttpRequest):
    """How fresh the catalog is; staff also get the worker, the registry and the last run."""
    freshness = catalog_freshness()
    sees_everything = access_for(request.user).q(Level.VIEW) is None
    body = {
        "catalog_synced_at": freshness.catalog_synced_at,
        "last_run_at": freshness.last_run_at,
        "stale": freshness.stale,
        "stale_after": freshness.stale_after,
        "registry_unreachable": freshness.unreachable,
        "last_run_error": freshness.last_run_error if sees_everything else None,
        "last_full_sync": None,
        "running": None,
        "worker_alive": None,
        "registry_reachable": None,
    }
    if getattr(request.user, "is_staff", False):
        report = status_report(request.user)
        last = report.last_full_sync
        body.update(
            last_full_sync=(
                {
                    "status": last.status,
                    "trigger": last.trigger,
                    "started_at": last.started_at,
                    "finished_at": last.finished_at,
                    "repositories_seen": last.repositories_seen if sees_everything else None,
                    "repositories_synced": last.repositories_synced if sees_everything else None,
                    "repositories_failed": last.repositories_failed if sees_everything else None,
                    "tags_seen": last.tags_seen if sees_everything else None,
                }
                if last is not None
                else None
            ),
            running=report.running is not None,
            worker_alive=report.worker_alive,
            registry_reachable=report.registry.reachable,
        )
    return body
