"""The tags table of a repository page: filter, natural sort, flat or grouped by image.

Everything is decided in the database and paginated there, on SQLite and PostgreSQL alike:

- the filter (``?q=``) keeps tags whose name contains the text: the exact name first, then
  the names that start with it, then the others (each part in the chosen sort);
- the tag-name sort is natural (``build-2`` before ``build-10``) through ``Tag.sort_key``;
- the flat view (``?view=flat``) is one row per tag, newest first by default;
- the grouped view (``?view=grouped``) pages through *images*: each group is ordered by its
  newest (matching) tag and shows at most ``GROUP_TAGS`` of its tags, newest first; the rest
  are counted ("N more tags") and a link opens the image's own page, which lists them all.

The view chosen is remembered in the session (anonymous visitors have one too), so the
page opens the way the user left it; except that a repository with more than
``GROUPED_MAX_TAGS`` tags opens flat unless the URL asks for the grouped view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import BadRequest
from django.db import models
from django.db.models import Case, Count, F, IntegerField, Max, Min, QuerySet, Value, When
from django.db.models.expressions import OrderBy, Window
from django.db.models.functions import Coalesce, Greatest, RowNumber
from django.http import HttpRequest

from registryui.catalog.models import IndexChild, Manifest, Repository, Tag
from registryui.lib.ordering import ascending, descending
from registryui.teams.models import Level
from registryui.teams.permissions import can

#: Rows per page of the flat view; images per page of the grouped view.
TAGS_PER_PAGE = 50
#: A bulk delete lists everything on one page; more than this is not a page but a policy.
#: (Here, below cleanup, so that the repository page can say it without importing cleanup.)
MAX_BULK_TAGS = 1000
GROUPS_PER_PAGE = 20
#: Above this many tags a repository opens in the flat view (see ``chosen_view``).
GROUPED_MAX_TAGS = 5000
#: Tags shown in one group; the others are counted ("N more tags").
GROUP_TAGS = 5
#: Where the chosen view is remembered.
SESSION_KEY = "registryui.tag_view"
#: The filter is a part of a tag name: the tag alphabet only.
FILTER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class TagView(models.TextChoices):
    GROUPED = "grouped", "Grouped by image"
    FLAT = "flat", "One row per tag"


class TagQueryError(BadRequest):
    """A query parameter of the tags table the page cannot use (a 400 page with the message)."""


#: The flat view's sorts: every one ends on the natural name order, so ties are stable.
FLAT_SORTS: dict[str, tuple[Any, ...]] = {
    "tag": ("sort_key", "name"),
    "-tag": ("-sort_key", "-name"),
    "digest": ("manifest__digest", "sort_key", "name"),
    "-digest": ("-manifest__digest", "sort_key", "name"),
    # ``Tag.size`` is its image's ``total_size`` on the row: an index range serves each
    # direction (``tag_repository_size``, ``tag_repository_size_desc``), no join, no sort.
    "size": ("size", "sort_key", "name"),
    "-size": ("-size", "sort_key", "name"),
    "created": (ascending("manifest__created"), "sort_key", "name"),
    "-created": (descending("manifest__created"), "sort_key", "name"),
    "platforms": ("manifest__platforms", "sort_key", "name"),
    "-platforms": ("-manifest__platforms", "sort_key", "name"),
    "changed": ("changed_at", "sort_key", "name"),
    "-changed": ("-changed_at", "sort_key", "name"),
    # Push time (issue 16): the recorded push, else the latest it can have been
    # (``Tag.pushed_by``; the queryset's ``with_pushed_by()`` annotation).
    "pushed": ("pushed_sort", "sort_key", "name"),
    "-pushed": ("-pushed_sort", "sort_key", "name"),
}

#: The grouped view's sorts, on the group's aggregates: ``newest`` (its newest tag's change),
#: ``first`` (its first tag in natural order), ``image_size`` (its tags' ``Tag.size``, the
#: image's size without a join) and the image's own columns.
GROUP_SORTS: dict[str, tuple[Any, ...]] = {
    "tag": ("first", "manifest_id"),
    "-tag": ("-first", "manifest_id"),
    "digest": ("manifest__digest",),
    "-digest": ("-manifest__digest",),
    "size": ("image_size", "first", "manifest_id"),
    "-size": ("-image_size", "first", "manifest_id"),
    "created": (ascending("manifest__created"), "first", "manifest_id"),
    "-created": (descending("manifest__created"), "first", "manifest_id"),
    "platforms": ("manifest__platforms", "first", "manifest_id"),
    "-platforms": ("-manifest__platforms", "first", "manifest_id"),
    "changed": ("newest", "first", "manifest_id"),
    "-changed": (descending("newest"), "first", "manifest_id"),
    "pushed": ("pushed", "first", "manifest_id"),
    "-pushed": (descending("pushed"), "first", "manifest_id"),
}

DEFAULT_SORT = "-changed"
LISTING_FIELDS = (
    "name",
    "sort_key",
    "changed_at",
    "pushed_at",
    "first_seen_at",
    "sync_problem",
    "manifest_id",
    "repository_id",
    "manifest__digest",
    "manifest__total_size",
    "manifest__created",
    "manifest__platforms",
    "manifest__kind",
    "manifest__media_type",
)


def clean_filter(raw: str | None) -> str:
    """The ``q`` parameter: '' or a part of a tag name (400 for anything a tag cannot hold)."""
    text = (raw or "").strip()
    if text and not FILTER_RE.match(text):
        raise TagQueryError(
            f"q={text[:140]!r} cannot be part of a tag: tags hold letters, digits, "
            "_ . and - (up to 128)."
        )
    return text


def chosen_view(request: HttpRequest, repository: Repository | None = None) -> TagView:
    """``?view=`` when given (and remembered), else the remembered choice, else grouped.

    A repository with more than ``GROUPED_MAX_TAGS`` tags opens flat whatever was remembered:
    grouping pages through images ordered by an aggregate over *every* tag, which no index
    serves, so at 100,000 tags it costs several times the page budget, where the flat view is
    an index range. Asked for by name (``?view=grouped``), it is still grouped."""
    raw = request.GET.get("view")
    if raw:
        if raw not in TagView.values:
            raise TagQueryError(f"view={raw[:40]!r} is not one of: {', '.join(TagView.values)}.")
        if request.session.get(SESSION_KEY) != raw:
            request.session[SESSION_KEY] = raw
        return TagView(raw)
    if repository is not None and too_many_to_group(repository):
        return TagView.FLAT
    remembered = request.session.get(SESSION_KEY)
    return TagView(remembered) if remembered in TagView.values else TagView.GROUPED


def too_many_to_group(repository: Repository) -> bool:
    """Whether the repository opens flat by default (its stored tag count: no query)."""
    return repository.tag_count > GROUPED_MAX_TAGS


def matching_tags(
    user, repository: Repository, text: str = "", *, attached: bool = True
) -> QuerySet:
    """The repository's tags the user may see whose name contains ``text``; without the
    signature, SBOM and attestation tags unless ``attached`` (``TagQuerySet.images``).

    What a user may see is decided per repository (``visible_tags`` filters on its name): the
    resolver is asked once for this one, instead of a filter joined to each of its tags (a
    100,000-tag repository paid that join on every row of its counts)."""
    tags = Tag.objects.filter(repository=repository)
    if not can(user, Level.VIEW, repository.name):
        tags = tags.none()
    if text:
        tags = _named(repository, tags, text)
    if not attached:
        tags = tags.images()
    return tags


#: A name filter that matches at most this many tags of a repository lists them by id.
FILTER_IDS_MAX = 2000


def _named(repository: Repository, tags: QuerySet, text: str) -> QuerySet:
    """``tags`` whose name contains ``text``. The ids of the matches are read once (on
    PostgreSQL from the trigram index on ``UPPER(name)``, catalog migration 0014; on SQLite
    from the ``(repository, name)`` index alone, no row); when they are few
    (``FILTER_IDS_MAX``), the counts and the page are taken from those ids, instead of a walk
    of every tag in the page's order looking for them (a 100,000-tag repository with 11
    matches read every row twice). The ids are kept on ``repository`` for the rest of the
    request: the counts and the page ask alike."""
    found = getattr(repository, "_ids_named", None)
    if found is None or found[0] != text:
        matching = tags.filter(name__icontains=text).order_by().values_list("pk", flat=True)
        found = (text, list(matching[: FILTER_IDS_MAX + 1]))
        repository._ids_named = found  # type: ignore[attr-defined]
    ids = found[1]
    if len(ids) > FILTER_IDS_MAX:
        return tags.filter(name__icontains=text)
    return tags.filter(pk__in=ids)


def tag_counts(user, repository: Repository, text: str = "") -> tuple[int, int]:
    """How many of the matching tags (``matching_tags``) name images, and how many are
    attachments (``Tag.attached``): the page's "N tags" and "M hidden", and the flat view's
    row count. Never a join to the manifests.

    Unfiltered, a repository too big to group (``too_many_to_group``) takes its images from
    the stored ``Repository.tag_count`` (kept with every tag write, by ``refresh_stats``)
    less its attachments, an index range on ``tag_repository_attached``: counting 100,000
    tags on every page view would read them all. Smaller ones, and any filtered list, are
    counted exactly in one query."""
    tags = matching_tags(user, repository, text)
    if not text and too_many_to_group(repository) and can(user, Level.VIEW, repository.name):
        attachments = tags.attachments().count()
        return max(repository.tag_count - attachments, 0), attachments
    counts = tags.aggregate(
        images=Count("pk", filter=models.Q(attached=False)),
        attachments=Count("pk", filter=models.Q(attached=True)),
    )
    return counts["images"], counts["attachments"]


def _prefix_first(text: str) -> tuple[Any, ...]:
    if not text:
        return ()
    rank = Case(
        When(name__iexact=text, then=Value(0)),
        When(name__istartswith=text, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (rank.asc(),)


def matching_names(user, repository: Repository, text: str, limit: int) -> list[str]:
    """Names of the matching tags in natural order, at most ``limit`` + 1 (to tell "more")."""
    return list(
        matching_tags(user, repository, text)
        .order_by("sort_key", "name")
        .values_list("name", flat=True)[: limit + 1]
    )


def flat_tags(
    user, repository: Repository, text: str, sort: str, *, attached: bool = True
) -> QuerySet:
    return (
        matching_tags(user, repository, text, attached=attached)
        .for_listing()
        .with_pushed_by()
        .only(*LISTING_FIELDS)
        .order_by(*_prefix_first(text), *FLAT_SORTS[sort])
    )


def image_groups(
    user, repository: Repository, text: str, sort: str, *, attached: bool = True
) -> QuerySet:
    """One row per image of the matching tags (``manifest_id``, ``newest``, ``first``, ``n``)."""
    return (
        matching_tags(user, repository, text, attached=attached)
        .values("manifest_id")
        .annotate(
            newest=Max("changed_at"),
            image_size=Max("size"),
            pushed=Max(Coalesce("pushed_at", Greatest("first_seen_at", "changed_at"))),
            first=Min("sort_key"),
            n=Count("id"),
        )
        .order_by(*GROUP_SORTS[sort])
    )


#: How a group's tags are ordered (the ROW_NUMBER window), by the table's sort.
IN_GROUP_ORDER: dict[str, list[OrderBy]] = {
    "tag": [F("sort_key").asc(), F("name").asc()],
    "-tag": [F("sort_key").desc(), F("name").desc()],
    DEFAULT_SORT: [F("changed_at").desc(), F("sort_key").asc(), F("name").asc()],
}


@dataclass
class PlatformImage:
    """One platform of an index, for the tags table: its digest and size."""

    platform: str
    digest: str
    size: int


@dataclass
class ImageGroup:
    """The tags of one image shown together (at most ``GROUP_TAGS``), newest first."""

    manifest: Manifest
    tags: list[Tag] = field(default_factory=list)
    #: How many tags of the repository (matching the filter) point at this image.
    total_tags: int = 0

    @property
    def more(self) -> int:
        return max(self.total_tags - len(self.tags), 0)

    @property
    def shared(self) -> bool:
        return self.total_tags > 1

    @property
    def rowspan(self) -> str:
        # A string: an int would go through number localization on each cell.
        return str(len(self.tags))


def fill_groups(
    user,
    repository: Repository,
    text: str,
    rows: list[dict[str, Any]],
    *,
    attached: bool = True,
    sort: str = DEFAULT_SORT,
) -> list[ImageGroup]:
    """The groups of one page of ``image_groups``: two queries, however big the groups.

    Within a group the tags follow a sort by tag name (``tag``/``-tag``); any other sort is
    of images, and their tags come newest first."""
    ids = [row["manifest_id"] for row in rows]
    manifests = Manifest.objects.defer("raw", "history", "config").in_bulk(ids)
    ranked = (
        matching_tags(user, repository, text, attached=attached)
        .filter(manifest_id__in=ids)
        .only(
            "name",
            "sort_key",
            "changed_at",
            "pushed_at",
            "first_seen_at",
            "sync_problem",
            "manifest_id",
            "repository_id",
        )
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("manifest_id")],
                order_by=IN_GROUP_ORDER.get(sort, IN_GROUP_ORDER[DEFAULT_SORT]),
            )
        )
        .filter(rank__lte=GROUP_TAGS)
        .order_by("manifest_id", "rank")
    )
    by_image: dict[int, list[Tag]] = {}
    for tag in ranked:
        tag.repository = repository  # the links need its name; no query per row
        by_image.setdefault(tag.manifest_id, []).append(tag)
    groups = []
    for row in rows:
        manifest = manifests.get(row["manifest_id"])
        if manifest is None:  # deleted between the two queries
            continue
        tags = by_image.get(manifest.pk, [])
        for tag in tags:
            tag.manifest = manifest
        groups.append(ImageGroup(manifest=manifest, tags=tags, total_tags=row["n"]))
    return groups


def attach_platform_images(manifests: list[Manifest]) -> None:
    """Give each index among ``manifests`` its ``platform_images`` (one query)."""
    indexes: dict[int, list[Manifest]] = {}
    for manifest in manifests:
        manifest.platform_images = []
        if manifest.is_index:
            indexes.setdefault(manifest.pk, []).append(manifest)
    if not indexes:
        return
    entries = (
        IndexChild.objects.filter(index_id__in=indexes, is_attestation=False)
        .select_related("child")
        .only(
            "index_id",
            "position",
            "os",
            "architecture",
            "variant",
            "child__digest",
            "child__total_size",
            "child__os",
            "child__architecture",
            "child__variant",
        )
        .order_by("index_id", "position")
    )
    for entry in entries:
        image = PlatformImage(
            platform=entry.platform or entry.child.platform,
            digest=entry.child.digest,
            size=entry.child.total_size,
        )
        for manifest in indexes[entry.index_id]:
            manifest.platform_images.append(image)
