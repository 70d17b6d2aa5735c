"""The storage page's figures for one viewer, from the rows ``catalog.storage`` keeps.

Every figure is computed over the repositories the viewer may see, and only those: a total is
the bytes of the distinct blobs of their visible repositories; "shared" is shared with other
*visible* repositories; "exclusive" (what deleting it would free) counts a blob as exclusive
when no other visible repository references it. For a viewer who sees every repository that is
exact (what garbage-collect gives back); for anyone else it is an upper bound that hidden
repositories cannot change, as ``cleanup.freed.Freed.as_seen_by`` does (docs/SECURITY.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import Coalesce, Lag
from django.utils import timezone

from registryui.catalog.models import Blob, RepositoryBlob, StorageSnapshot, Tag
from registryui.cleanup.freed import sees_every_repository
from registryui.lib.reference import reference_url
from registryui.teams.models import Level, Team
from registryui.teams.patterns import patterns_q
from registryui.teams.permissions import access_for, visible_repositories

#: Rows in the "largest images" and "most shared layers" lists.
TOP = 10
#: Layers read at a time while looking for the most shared ones a viewer can see.
LAYER_BATCH = 200


@dataclass
class Figure:
    """Bytes of one repository, namespace or team (or the whole of what the viewer sees)."""

    name: str
    referenced: int
    exclusive: int
    repositories: int = 1
    url: str = ""

    @property
    def shared(self) -> int:
        return self.referenced - self.exclusive


@dataclass(frozen=True)
class Image:
    repository: str
    digest: str
    bytes: int
    tags: tuple[str, ...]

    @property
    def url(self) -> str:
        if self.tags:
            return reference_url(self.repository, tag=self.tags[0])
        return reference_url(self.repository, digest=self.digest)


@dataclass(frozen=True)
class SharedLayer:
    digest: str
    size: int
    images: int
    repositories: int


@dataclass
class Growth:
    """Bytes over time, one point per stored snapshot, ending now."""

    points: list[tuple[datetime, int]]
    #: True: the registry as stored (each blob once). False: the sum of the sizes of the
    #: repositories the viewer sees (a blob two of them share counts twice).
    distinct: bool


@dataclass
class StorageReport:
    total: Figure
    #: Bytes of the blobs more than one visible repository references (counted once).
    shared_between: int
    #: Exclusive figures are upper bounds (the viewer does not see every repository).
    bound: bool
    repositories: RepositoryFigures
    namespaces: list[Figure]
    teams: list[Figure]
    largest_images: list[Image] = field(default_factory=list)
    shared_layers: list[SharedLayer] = field(default_factory=list)
    growth: Growth | None = None


class _Sharing:
    """The blobs several repositories reference, counted over the visible ones: every other
    blob belongs to one repository alone, whose ``size`` counts it once.

    Counted in SQL, one row per shared blob (and per namespace, team or repository asked
    about), never one per link: a base layer in every one of 20,000 repositories is one row.
    """

    def __init__(self, links) -> None:
        #: The visible links of blobs that more than one repository references.
        # The few shared blobs drive the plan (``blob_repository_count``, then the links of
        # each): SQLite would otherwise walk every link of every visible repository.
        shared = Blob.objects.filter(repository_count__gt=1).values("id")
        self.links = links.filter(blob_id__in=shared)
        #: blob id → (size, visible repositories that reference it).
        self.holders: dict[int, tuple[int, int]] = {
            blob_id: (size, holders)
            for blob_id, size, holders in self.links.values("blob_id")
            .annotate(holders=Count("id"))
            .values_list("blob_id", "blob__size", "holders")
        }

    @property
    def shared_between(self) -> int:
        return sum(size for size, holders in self.holders.values() if holders > 1)

    @property
    def repeats(self) -> int:
        """Bytes counted more than once when the visible repositories' sizes are added up."""
        return sum(size * (holders - 1) for size, holders in self.holders.values())

    def figure(
        self, name: str, size_sum: int, count: int, inside: dict[int, int], url=""
    ) -> Figure:
        """A group of repositories whose own bytes add up to ``size_sum``; ``inside``: how many
        of them reference each shared blob (blob id → count, those they hold only)."""
        repeats = leaving = 0
        for blob_id, members in inside.items():
            if blob_id not in self.holders:
                continue  # shared since the report was made (a page is read later): as then
            size, holders = self.holders[blob_id]
            repeats += size * (members - 1)
            if members < holders:
                leaving += size
        referenced = size_sum - repeats
        return Figure(name, referenced, referenced - leaving, count, url)

    def inside(self, links) -> dict[int, int]:
        """blob id → how many of these links (a narrowing of ``self.links``) reference it."""
        return dict(links.values("blob_id").annotate(n=Count("id")).values_list("blob_id", "n"))

    def by_namespace(self) -> dict[str, dict[int, int]]:
        found: dict[str, dict[int, int]] = defaultdict(dict)
        for namespace, blob_id, n in (
            self.links.values("repository__namespace", "blob_id")
            .annotate(n=Count("id"))
            .values_list("repository__namespace", "blob_id", "n")
        ):
            found[namespace][blob_id] = n
        return found

    def of_repositories(self, ids: list[int]) -> dict[int, dict[int, int]]:
        found: dict[int, dict[int, int]] = defaultdict(dict)
        for repository_id, blob_id in self.links.filter(repository_id__in=ids).values_list(
            "repository_id", "blob_id"
        ):
            found[repository_id][blob_id] = 1
        return found


class RepositoryFigures:
    """The visible repositories' figures, largest first, computed only for the slice asked
    for (a page): a repository's referenced bytes are its ``size``, indexed for this order."""

    def __init__(self, queryset, sharing: _Sharing) -> None:
        self.queryset = queryset.order_by("-size", "name")
        self.sharing = sharing
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = self.queryset.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index : index + 1][0]
        rows = list(self.queryset.values_list("id", "name", "size")[index])
        shared = self.sharing.of_repositories([pk for pk, _, _ in rows]) if rows else {}
        return [
            self.sharing.figure(name, size, 1, shared.get(pk, {}), reference_url(name))
            for pk, name, size in rows
        ]

    def __iter__(self):
        return iter(self[0 : self.count()])

    def __eq__(self, other) -> bool:
        return isinstance(other, RepositoryFigures) and list(self) == list(other)


def storage_report(user, *, now: datetime | None = None) -> StorageReport:
    everything = sees_every_repository(user)
    visible = visible_repositories(user)
    sharing = _Sharing(_visible_links(user, everything))
    totals = visible.aggregate(size=Coalesce(Sum("size"), 0), count=Count("id"))
    inside = sharing.by_namespace()
    namespaces = sorted(
        (
            sharing.figure(row["namespace"], row["size"], row["count"], inside[row["namespace"]])
            for row in visible.order_by()
            .values("namespace")
            .annotate(size=Coalesce(Sum("size"), 0), count=Count("id"))
        ),
        key=lambda f: (-f.referenced, f.name),
    )
    everyone = {blob_id: holders for blob_id, (_, holders) in sharing.holders.items()}
    return StorageReport(
        total=sharing.figure("", totals["size"], totals["count"], everyone),
        shared_between=sharing.shared_between,
        bound=not everything,
        repositories=RepositoryFigures(visible, sharing),
        namespaces=namespaces,
        teams=_teams(user, visible, sharing, everything),
        largest_images=largest_images(user, everything),
        shared_layers=most_shared_layers(user, everything),
        growth=growth(user, everything, now=now),
    )


def _teams(user, visible, sharing: _Sharing, everything: bool) -> list[Figure]:
    """Each team the user belongs to, over the visible repositories its grants cover; every
    team for staff who see every repository. (A team admin is staff too, but another team's
    name, like ``team-a``, would name a namespace they may not see.)"""
    teams = Team.objects.prefetch_related("grants").order_by("name")
    if not (everything and user.is_authenticated and user.is_staff):
        teams = teams.filter(id__in=access_for(user).team_ids)
    figures = []
    for team in teams:
        patterns = [grant.pattern for grant in team.grants.all()]
        covered = patterns_q(patterns) if patterns else Q(pk__in=[])
        members = visible if covered is None else visible.filter(covered)
        totals = members.aggregate(size=Coalesce(Sum("size"), 0), count=Count("id"))
        links = sharing.links
        if covered is not None:
            links = links.filter(patterns_q(patterns, field="repository__name"))
        inside = sharing.inside(links)
        figures.append(sharing.figure(team.name, totals["size"], totals["count"], inside))
    return sorted(figures, key=lambda f: (-f.referenced, f.name))


def _visible_links(user, everything: bool):
    links = RepositoryBlob.objects.all()
    if not everything:
        q = access_for(user).q(Level.VIEW, field="repository__name")
        links = links.filter(q) if q is not None else links
    return links


def largest_images(user, everything: bool) -> list[Image]:
    """The biggest tagged images (by what a pull downloads) the viewer can see."""
    rows = list(
        _visible_links(user, everything)
        .filter(tagged=True, blob__kind=Blob.Kind.MANIFEST)
        .order_by("-blob__image_size", "repository__name", "blob__digest")
        .values_list("repository_id", "repository__name", "blob__digest", "blob__image_size")[:TOP]
    )
    if not rows:
        return []
    wanted = Q()
    for repository_id, _, digest, _ in rows:
        wanted |= Q(repository_id=repository_id, manifest__digest=digest)
    tags: dict[tuple[int, str], list[str]] = defaultdict(list)
    for repository_id, digest, tag in (
        Tag.objects.filter(wanted)
        .order_by("name")
        .values_list("repository_id", "manifest__digest", "name")
    ):
        tags[(repository_id, digest)].append(tag)
    return [Image(name, digest, size, tuple(tags[(pk, digest)])) for pk, name, digest, size in rows]


def most_shared_layers(user, everything: bool) -> list[SharedLayer]:
    """The layers used by the most images the viewer can see (at least two).

    For a viewer who sees everything the blobs' own counts answer. Otherwise layers are read
    in order of their total count, each recounted over the visible links, until no layer left
    could beat the list (a layer's visible count is at most its total)."""
    layers = Blob.objects.filter(kind=Blob.Kind.LAYER, image_count__gt=1).order_by(
        "-image_count", "digest"
    )
    if everything:
        return [
            SharedLayer(digest, size, images, repositories)
            for digest, size, images, repositories in layers.values_list(
                "digest", "size", "image_count", "repository_count"
            )[:TOP]
        ]
    best: list[SharedLayer] = []
    offset = 0
    while True:
        batch = list(
            layers.values_list("id", "digest", "size", "image_count")[offset : offset + LAYER_BATCH]
        )
        if not batch:
            break
        counts = {
            blob_id: (images, repositories)
            for blob_id, images, repositories in _visible_links(user, False)
            .filter(blob_id__in=[row[0] for row in batch])
            .values("blob_id")
            .annotate(images=Sum("images"), repositories=Count("id"))
            .values_list("blob_id", "images", "repositories")
        }
        for blob_id, digest, size, _ in batch:
            images, repositories = counts.get(blob_id, (0, 0))
            if images > 1:
                best.append(SharedLayer(digest, size, images, repositories))
        best = sorted(best, key=lambda layer: (-layer.images, layer.digest))[:TOP]
        if len(batch) < LAYER_BATCH or (len(best) == TOP and batch[-1][3] <= best[-1].images):
            break
        offset += LAYER_BATCH
    return best


def growth(user, everything: bool, *, now: datetime | None = None) -> Growth:
    """The registry's stored bytes after each sync for a viewer who sees everything; for
    anyone else the sum of the visible repositories' bytes (the registry total would tell
    what hidden repositories hold)."""
    now = now or timezone.now()
    if everything:
        rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REGISTRY)
        points = list(rows.order_by("taken_at").values_list("taken_at", "bytes"))
    else:
        points = []
        total = 0
        for taken_at, change, changed in _visible_changes(user):
            total += change
            # A row whose bytes did not change (its exclusive bytes did, through sharing with
            # hidden repositories) adds no point: its time would tell of them.
            if changed:
                points.append((taken_at, total))
    if points:
        points.append((max(now, points[-1][0]), points[-1][1]))
    return Growth(points, distinct=everything)


def _visible_changes(user) -> list[tuple[datetime, int, bool]]:
    """For each time a visible repository's row was written: by how many bytes the sum of the
    visible repositories' bytes changed, and whether any of them changed (a repository's
    change is its bytes less those of its previous row). Summed in SQL, one row per time."""
    rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REPOSITORY)
    q = access_for(user).q(Level.VIEW, field="name")
    rows = rows.filter(q) if q is not None else rows
    previous = Window(
        Lag("bytes", default=0), partition_by=[F("name")], order_by=["taken_at", "id"]
    )
    inner = rows.annotate(change=F("bytes") - previous).values_list("taken_at", "change")
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # the user may see no repository
        return []
    with connection.cursor() as cursor:
        head = "SELECT taken_at, SUM(change), MAX(CASE WHEN change <> 0 THEN 1 ELSE 0 END)"
        changes = f"{head} FROM ({sql}) AS changes GROUP BY taken_at ORDER BY taken_at"
        cursor.execute(changes, params)
        found = cursor.fetchall()
    field = StorageSnapshot._meta.get_field("taken_at")
    converters = connection.ops.get_db_converters(field.get_col(StorageSnapshot._meta.db_table))
    changes = []
    for taken_at, change, changed in found:
        for converter in converters:
            taken_at = converter(taken_at, field, connection)
        changes.append((taken_at, int(change), bool(changed)))
    return changes
