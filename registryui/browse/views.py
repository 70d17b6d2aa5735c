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
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import BadRequest
from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import Count, F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from registryui.catalog.freshness import catalog_freshness, repository_freshness
from registryui.catalog.models import (
    IndexChild,
    Layer,
    Manifest,
    Repository,
    Tag,
)
from registryui.lib.ordering import ascending, descending
from registryui.lib.reference import is_valid_component, reference_url
from registryui.overview.queries import StarredFirst
from registryui.teams.decorators import viewer_required
from registryui.teams.permissions import visible_repositories, visible_tags

from . import tags as tags_table
from .attached import annotate_badges, attached_context
from .commands import manifest_commands, pull_command
from .lookup import Resolved, resolve
from .pushing import may_push_somewhere
from .search import clean_query, search

REPOSITORIES_PER_PAGE = 50
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


def paginate(
    request: HttpRequest, queryset: QuerySet, per_page: int, *, count: int | None = None
) -> Page:
    """The requested page; ``count``: the number of rows when the caller has counted them
    already (saves the paginator's own ``COUNT``)."""
    raw = request.GET.get("page") or "1"
    try:
        number = int(raw)
    except ValueError:
        raise QueryError(f"page={raw!r} is not a page number.") from None
    if number < 1:
        raise QueryError(f"page={raw!r} is not a page number (pages start at 1).")
    paginator = Paginator(queryset, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: set, it is not computed
    try:
        return paginator.page(number)
    except EmptyPage:
        raise Http404(
            f"There is no page {number}: this list has {paginator.num_pages} "
            f"page{'s' if paginator.num_pages != 1 else ''}."
        ) from None


# -- the repositories page ------------------------------------------------------------------

REPOSITORY_SORTS: dict[str, tuple[Any, ...]] = {
    "name": ("name",),
    "-name": ("-name",),
    "updated": (ascending("last_updated_at"), "name"),
    "-updated": (descending("last_updated_at"), "name"),
    "size": ("size", "name"),
    "-size": ("-size", "name"),
    "tags": ("tag_count", "name"),
    "-tags": ("-tag_count", "name"),
}


def filter_repositories(repositories: QuerySet, query: str, namespace: str) -> QuerySet:
    """The repository list's filters (the page and the API): a name part (``clean_query``'d)
    and a namespace (``TOP_LEVEL`` for names without one)."""
    if query:
        repositories = repositories.filter(name__contains=query.lower())
    if namespace == TOP_LEVEL:
        repositories = repositories.filter(namespace="")
    elif namespace:
        if not is_valid_component(namespace):
            raise QueryError(f"namespace={namespace!r} is not a namespace.")
        repositories = repositories.filter(namespace=namespace)
    return repositories


@require_safe
@viewer_required
def repository_list(request: HttpRequest) -> HttpResponse:
    query = clean_query(request.GET.get("q"))
    namespace = request.GET.get("namespace", "")
    sort = choose(request, "sort", list(REPOSITORY_SORTS), "name")
    starred = choose(request, "starred", ["", "1"], "")

    visible = visible_repositories(request.user)
    # Starred repositories first (then the chosen sort), each row with its description.
    repositories = StarredFirst(
        request.user,
        filter_repositories(visible, query, namespace).only(
            "name",
            "namespace",
            "tag_count",
            "size",
            "last_updated_at",
            "last_synced_at",
            "last_sync_error",
            "last_sync_error_at",
        ),
        REPOSITORY_SORTS[sort],
        only_starred=bool(starred),
    )
    filtered = bool(query or namespace or starred)
    count = None
    extra: dict[str, Any] = {}
    if not wants_fragment(request):
        # Only the full page has the namespace menu. One pass over the visible repositories
        # gives it, and, unfiltered, the total as well (no second pass to count them).
        per_namespace = list(
            visible.order_by("namespace").values_list("namespace").annotate(n=Count("pk"))
        )
        extra["namespaces"] = [ns for ns, _ in per_namespace if ns]
        if not filtered:
            count = sum(n for _, n in per_namespace)
        extra["freshness"] = catalog_freshness()
    page = paginate(request, repositories, REPOSITORIES_PER_PAGE, count=count)
    context: dict[str, Any] = {
        "page": page,
        "repositories": page.object_list,
        "query": query,
        "namespace": namespace,
        "sort": sort,
        "starred": starred,
        "top_level": TOP_LEVEL,
        "filtered": filtered,
        **extra,
    }
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


def repository_page(request: HttpRequest, repository: Repository) -> HttpResponse:
    """The tags table (``browse.tags``: filter, natural sort, flat or grouped view)."""
    sort = choose(request, "sort", list(tags_table.FLAT_SORTS), tags_table.DEFAULT_SORT)
    text = tags_table.clean_filter(request.GET.get("q"))
    view = tags_table.chosen_view(request, repository)
    # Signature, SBOM and attestation tags are hidden unless asked for (issue 17).
    attached = choose(request, "attached", ["hidden", "shown"], "hidden") == "shown"
    user = request.user
    context: dict[str, Any] = {
        "repository": repository,
        "sort": sort,
        "tag_filter": text,
        "show_attached": attached,
        "view": view,
        "views": tags_table.TagView.choices,
        "opened_flat": (
            view == tags_table.TagView.FLAT
            and not request.GET.get("view")
            and tags_table.too_many_to_group(repository)
        ),
        "grouped_max": tags_table.GROUPED_MAX_TAGS,
        "pull_prefix": pull_command(repository.name),
        "bulk_limit": tags_table.MAX_BULK_TAGS,
    }
    # How many tags match, and how many signature/attestation tags are hidden (also the flat
    # view's row count).
    images, attachments = tags_table.tag_counts(user, repository, text)
    context["matching"] = images + (attachments if attached else 0)
    context["hidden_attachments"] = 0 if attached else attachments
    if view == tags_table.TagView.FLAT:
        page = paginate(
            request,
            tags_table.flat_tags(user, repository, text, sort, attached=attached),
            tags_table.TAGS_PER_PAGE,
            count=context["matching"],
        )
        rows = list(page.object_list)
        for tag in rows:
            tag.repository = repository  # the links need its name; no query per row
        tags_table.attach_platform_images([t.manifest for t in rows])
        annotate_badges(repository, [t.manifest for t in rows])
        context["rows"] = rows
    else:
        page = paginate(
            request,
            tags_table.image_groups(user, repository, text, sort, attached=attached),
            tags_table.GROUPS_PER_PAGE,
        )
        groups = tags_table.fill_groups(
            user, repository, text, list(page.object_list), attached=attached, sort=sort
        )
        tags_table.attach_platform_images([g.manifest for g in groups])
        annotate_badges(repository, [g.manifest for g in groups])
        context["groups"] = groups
    context["page"] = page
    context["may_copy"] = may_push_somewhere(user)
    if not wants_fragment(request):
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


def image_details(manifest: Manifest) -> tuple[list[ImageDetails], list[IndexChild]]:
    """The images of a manifest (one, or an index's platforms) with their layers, and an
    index's attestations (the manifest page and the API)."""
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
    return images, attestations


def manifest_page(request: HttpRequest, resolved: Resolved) -> HttpResponse:
    repository, tag, manifest = resolved.repository, resolved.tag, resolved.manifest
    assert manifest is not None

    images, attestations = image_details(manifest)

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
    others = list(here.order_by("sort_key", "name")[: OTHER_TAGS_LIMIT + 1])
    elsewhere = list(
        same_image.exclude(repository=repository).order_by("repository__name", "sort_key", "name")[
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
    commands = manifest_commands(
        repository.name,
        manifest.digest,
        tag.name if tag is not None else None,
        [(image.platform, image.manifest.digest) for image in images if image.entry is not None],
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
        "may_copy": may_push_somewhere(request.user),
        **attached_context(
            request.user,
            repository,
            manifest,
            None if manifest.is_index or not images else images[0].layers,
        ),
    }
    return render(request, "catalog/manifest.html", context)
