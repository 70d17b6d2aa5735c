"""The pages people use every day: repositories, search, a repository's tags, a tag or digest.

Views are thin: access goes through the resolver (``registryui.teams.permissions``) and the
reference lookup (``browse.lookup.resolve``), search through ``browse.search``, freshness
through ``catalog.freshness``. Every page renders from the database alone and issues a
constant number of queries, however many tags a repository has.

htmx: the list, search and tags table are ``{% partialdef %}`` blocks; an htmx request (not
boosted, not a history restore) gets the block alone, everyone else the full page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import Count, F, QuerySet
from django.db.models.expressions import OrderBy
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from registryui.catalog.freshness import catalog_freshness, repository_freshness
from registryui.catalog.models import IndexChild, Layer, Manifest, Repository, Tag
from registryui.lib.reference import is_valid_component, reference_url
from registryui.teams.decorators import viewer_required
from registryui.teams.permissions import visible_repositories, visible_tags

from .attached import annotate_badges, attached_context, split_attachments
from .lookup import Resolved, resolve
from .search import clean_query, search

REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 50
#: "Other tags on this image" shows this many, then says how many more there are.
OTHER_TAGS_LIMIT = 50
#: The namespace filter's value for names without a namespace (``hello``); ``-`` can never
#: start a path component, so it cannot collide with a real namespace.
TOP_LEVEL = "-"


class QueryError(BadRequest):
    """A query parameter the page cannot use (rendered as a 400 page with the message)."""


# -- helpers --------------------------------------------------------------------------------


def wants_fragment(request: HttpRequest) -> bool:
    """The one place that decides partial vs full page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], partial: str
) -> HttpResponse:
    name = f"{template}#{partial}" if wants_fragment(request) else template
    response = render(request, name, context)
    patch_vary_headers(response, ("HX-Request", "HX-History-Restore-Request"))
    return response


def choose(request: HttpRequest, name: str, allowed: Sequence[str], default: str) -> str:
    value = request.GET.get(name) or default
    if value not in allowed:
        raise QueryError(f"{name}={value!r} is not one of: {', '.join(allowed)}.")
    return value


def paginate(request: HttpRequest, queryset: QuerySet, per_page: int) -> Page:
    raw = request.GET.get("page") or "1"
    try:
        number = int(raw)
    except ValueError:
        raise QueryError(f"page={raw!r} is not a page number.") from None
    if number < 1:
        raise QueryError(f"page={raw!r} is not a page number (pages start at 1).")
    paginator = Paginator(queryset, per_page)
    try:
        return paginator.page(number)
    except EmptyPage:
        raise Http404(
            f"There is no page {number}: this list has {paginator.num_pages} "
            f"page{'s' if paginator.num_pages != 1 else ''}."
        ) from None


def pull_command(repository: str, reference: str = "") -> str:
    """``docker pull HOST/REPO[:TAG|@DIGEST]`` with HOST = REGISTRY_PUBLIC_HOST."""
    host = settings.REGISTRY_PUBLIC_HOST
    image = f"{host}/{repository}" if host else repository
    return f"docker pull {image}{reference}"


def _asc(field_name: str) -> OrderBy:
    return F(field_name).asc(nulls_first=True)


def _desc(field_name: str) -> OrderBy:
    return F(field_name).desc(nulls_last=True)


# -- the repositories page ------------------------------------------------------------------

REPOSITORY_SORTS: dict[str, tuple[Any, ...]] = {
    "name": ("name",),
    "-name": ("-name",),
    "updated": (_asc("last_updated_at"), "name"),
    "-updated": (_desc("last_updated_at"), "name"),
    "size": ("size", "name"),
    "-size": ("-size", "name"),
    "tags": ("tag_count", "name"),
    "-tags": ("-tag_count", "name"),
}


@require_safe
@viewer_required
def repository_list(request: HttpRequest) -> HttpResponse:
    query = clean_query(request.GET.get("q"))
    namespace = request.GET.get("namespace", "")
    sort = choose(request, "sort", list(REPOSITORY_SORTS), "name")

    visible = visible_repositories(request.user)
    repositories = visible
    if query:
        repositories = repositories.filter(name__contains=query.lower())
    if namespace == TOP_LEVEL:
        repositories = repositories.filter(namespace="")
    elif namespace:
        if not is_valid_component(namespace):
            raise QueryError(f"namespace={namespace!r} is not a namespace.")
        repositories = repositories.filter(namespace=namespace)
    repositories = repositories.order_by(*REPOSITORY_SORTS[sort]).only(
        "name",
        "namespace",
        "tag_count",
        "size",
        "last_updated_at",
        "last_synced_at",
        "last_sync_error",
        "last_sync_error_at",
    )
    page = paginate(request, repositories, REPOSITORIES_PER_PAGE)
    context: dict[str, Any] = {
        "page": page,
        "repositories": page.object_list,
        "query": query,
        "namespace": namespace,
        "sort": sort,
        "top_level": TOP_LEVEL,
        "filtered": bool(query or namespace),
    }
    if not wants_fragment(request):
        # Only the full page shows these; the fragment branch skips their queries.
        context["namespaces"] = list(
            visible.exclude(namespace="")
            .order_by("namespace")
            .values_list("namespace", flat=True)
            .distinct()
        )
        context["freshness"] = catalog_freshness()
    return render_page(request, "catalog/repository_list.html", context, "results")


# -- search ---------------------------------------------------------------------------------


@require_safe
@viewer_required
def search_view(request: HttpRequest) -> HttpResponse:
    results = search(request.user, request.GET.get("q"))
    if results.exact and not wants_fragment(request):
        # A full reference the user may see: go straight to it.
        return redirect(results.exact)
    context: dict[str, Any] = {"results": results, "search_query": results.query}
    if not wants_fragment(request):
        context["freshness"] = catalog_freshness()
    return render_page(request, "catalog/search.html", context, "results")


# -- /r/<reference> -------------------------------------------------------------------------


@require_safe
@viewer_required
def reference(request: HttpRequest, reference: str) -> HttpResponse:
    if "/-/" in f"/{reference}":
        # An action URL (``/r/<ref>/-/<action>``) that no app answered.
        raise Http404(f"There is no action at {reference_url(reference)}.")
    if reference.endswith("/"):
        stripped = reference.rstrip("/")
        if stripped:
            query = f"?{request.GET.urlencode()}" if request.GET else ""
            return HttpResponsePermanentRedirect(f"{reference_url(stripped)}{query}")
    resolved = resolve(request.user, reference)
    if resolved.manifest is None:
        return repository_page(request, resolved.repository)
    return manifest_page(request, resolved)


# -- a repository's tags --------------------------------------------------------------------

TAG_SORTS: dict[str, tuple[Any, ...]] = {
    "tag": ("name",),
    "-tag": ("-name",),
    "digest": ("manifest__digest", "name"),
    "-digest": ("-manifest__digest", "name"),
    "size": ("manifest__total_size", "name"),
    "-size": ("-manifest__total_size", "name"),
    "created": (_asc("manifest__created"), "name"),
    "-created": (_desc("manifest__created"), "name"),
    "platforms": ("manifest__platforms", "name"),
    "-platforms": ("-manifest__platforms", "name"),
    "changed": ("changed_at", "name"),
    "-changed": ("-changed_at", "name"),
}


@dataclass
class ImageGroup:
    """Tags of one page that share a digest: one image, shown as one group of rows."""

    manifest: Manifest
    tags: list[Tag] = field(default_factory=list)
    #: How many tags of the repository point at this image (on any page).
    total_tags: int = 0

    @property
    def elsewhere(self) -> int:
        return max(self.total_tags - len(self.tags), 0)

    @property
    def shared(self) -> bool:
        return self.total_tags > 1

    @property
    def rowspan(self) -> str:
        # A string: an int would go through number localization on each of four cells.
        return str(len(self.tags))


def group_by_image(tags: Sequence[Tag], counts: dict[int, int]) -> list[ImageGroup]:
    """Gather a page's tags by digest; a group sits where its first tag sorts."""
    groups: dict[int, ImageGroup] = {}
    for tag in tags:
        group = groups.get(tag.manifest_id)
        if group is None:
            group = groups[tag.manifest_id] = ImageGroup(
                manifest=tag.manifest, total_tags=counts.get(tag.manifest_id, 1)
            )
        group.tags.append(tag)
    return list(groups.values())


def repository_page(request: HttpRequest, repository: Repository) -> HttpResponse:
    sort = choose(request, "sort", list(TAG_SORTS), "-changed")
    show_attached = choose(request, "attached", ["hidden", "shown"], "hidden") == "shown"
    listed, hidden_attachments = split_attachments(
        visible_tags(request.user, Tag.objects.filter(repository=repository)), show_attached
    )
    tags = (
        listed.for_listing()
        .only(
            "name",
            "changed_at",
            "sync_problem",
            "manifest_id",
            "repository_id",
            "manifest__digest",
            "manifest__total_size",
            "manifest__created",
            "manifest__platforms",
            "manifest__kind",
            "manifest__media_type",
            "manifest__artifact_type",
        )
        .order_by(*TAG_SORTS[sort])
    )
    page = paginate(request, tags, TAGS_PER_PAGE)
    page_tags = list(page.object_list)
    for tag in page_tags:
        tag.repository = repository  # the links need its name; no query per row
    counts = dict(
        Tag.objects.filter(
            repository=repository, manifest_id__in={t.manifest_id for t in page_tags}
        )
        .values("manifest_id")
        .annotate(n=Count("id"))
        .values_list("manifest_id", "n")
    )
    groups = group_by_image(page_tags, counts)
    annotate_badges(repository, [group.manifest for group in groups])
    context: dict[str, Any] = {
        "repository": repository,
        "page": page,
        "groups": groups,
        "sort": sort,
        "show_attached": show_attached,
        "hidden_attachments": hidden_attachments,
    }
    if not wants_fragment(request):
        has_latest = repository.tags.filter(name="latest").exists()
        newest = None
        if not has_latest:
            newest = (
                repository.tags.images()
                .order_by("-changed_at", "name")
                .values_list("name", flat=True)
                .first()
            )
        context["pull"] = (
            pull_command(repository.name)
            if has_latest or newest is None
            else pull_command(repository.name, f":{newest}")
        )
        context["freshness"] = repository_freshness(repository)
    return render_page(request, "catalog/repository.html", context, "tags")


# -- a tag or a digest ----------------------------------------------------------------------


@dataclass
class HistoryStep:
    created: str
    created_by: str
    comment: str
    empty_layer: bool
    layer: Layer | None = None


@dataclass
class ImageDetails:
    """One image's facts for the page: layers with their share, history, config."""

    manifest: Manifest
    layers: list[Layer]
    platform: str = ""
    #: The index entry this image came from, for a platform section of an index.
    entry: IndexChild | None = None

    @property
    def layers_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def total(self) -> int:
        return self.manifest.total_size or self.layers_size

    @property
    def history(self) -> list[HistoryStep]:
        """History entries, each non-empty one matched to its layer (they come in order)."""
        layers = iter(self.layers)
        steps = []
        for entry in self.manifest.history or []:
            if not isinstance(entry, dict):
                continue
            empty = bool(entry.get("empty_layer"))
            steps.append(
                HistoryStep(
                    created=str(entry.get("created") or ""),
                    created_by=str(entry.get("created_by") or ""),
                    comment=str(entry.get("comment") or ""),
                    empty_layer=empty,
                    layer=None if empty else next(layers, None),
                )
            )
        return steps

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.config or {}

    @property
    def labels(self) -> list[tuple[str, str]]:
        return sorted((self.manifest.labels or {}).items())


def manifest_page(request: HttpRequest, resolved: Resolved) -> HttpResponse:
    repository, tag, manifest = resolved.repository, resolved.tag, resolved.manifest
    assert manifest is not None

    images: list[ImageDetails] = []
    attestations: list[IndexChild] = []
    if manifest.is_index:
        entries = list(
            IndexChild.objects.filter(index=manifest).select_related("child").order_by("position")
        )
        platforms = [e for e in entries if not e.is_attestation]
        attestations = [e for e in entries if e.is_attestation]
        layers_by_manifest: dict[int, list[Layer]] = {}
        for layer in Layer.objects.filter(manifest_id__in=[e.child_id for e in platforms]).order_by(
            "manifest_id", "position"
        ):
            layers_by_manifest.setdefault(layer.manifest_id, []).append(layer)
        images = [
            ImageDetails(
                manifest=e.child,
                layers=layers_by_manifest.get(e.child_id, []),
                platform=e.platform or e.child.platform,
                entry=e,
            )
            for e in platforms
        ]
    elif manifest.kind == Manifest.Kind.IMAGE:
        images = [
            ImageDetails(
                manifest=manifest,
                layers=list(manifest.layers.order_by("position")),
                platform=manifest.platform,
            )
        ]

    # Other tags on this image: this repository's first, then other repositories the user may
    # see (two bounded queries, so that neither list can crowd out the other).
    same_image = (
        visible_tags(request.user, Tag.objects.filter(manifest=manifest))
        .only("name", "changed_at", "repository__name")
        .select_related("repository")
    )
    here = same_image.filter(repository=repository)
    if tag is not None:
        here = here.exclude(pk=tag.pk)
    others = list(here.order_by("name")[: OTHER_TAGS_LIMIT + 1])
    elsewhere = list(
        same_image.exclude(repository=repository).order_by("repository__name", "name")[
            : OTHER_TAGS_LIMIT + 1
        ]
    )

    # An image that is a platform of an index: the index's tags in this repository. One join,
    # limited to this repository: manifests are kept forever, and a platform image that a
    # rebuild leaves unchanged is listed by every index built since (old ones untagged).
    parents: list[IndexChild] = []
    if not manifest.is_index:
        parents = list(
            IndexChild.objects.filter(child=manifest, index__tags__repository=repository)
            .annotate(tag=F("index__tags__name"))
            .only("os", "architecture", "variant")
            .order_by("tag", "position")[:OTHER_TAGS_LIMIT]
        )

    title = f"{repository.name}:{tag.name}" if tag else f"{repository.name}@{manifest.digest}"
    commands = []
    if tag is not None:
        commands.append(
            {
                "label": "Pull by tag",
                "id": "pull-tag",
                "command": pull_command(repository.name, f":{tag.name}"),
            }
        )
    commands.append(
        {
            "label": "Pull by digest",
            "id": "pull-digest",
            "command": pull_command(repository.name, f"@{manifest.digest}"),
        }
    )
    context = {
        "repository": repository,
        "tag": tag,
        "manifest": manifest,
        "title": title,
        "images": images,
        "attestations": attestations,
        "others": others[:OTHER_TAGS_LIMIT],
        "more_others": len(others) > OTHER_TAGS_LIMIT,
        "elsewhere": elsewhere[:OTHER_TAGS_LIMIT],
        "more_elsewhere": len(elsewhere) > OTHER_TAGS_LIMIT,
        "parents": parents,
        "commands": commands,
        "freshness": repository_freshness(repository),
        **attached_context(
            request.user,
            repository,
            manifest,
            None if manifest.is_index or not images else images[0].layers,
        ),
    }
    return render(request, "catalog/manifest.html", context)
