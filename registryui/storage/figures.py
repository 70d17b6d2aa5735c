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

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from registryui.catalog.models import Blob, RepositoryBlob, StorageSnapshot, Tag
from registryui.catalog.storage import SharedLink, shared_links
from registryui.cleanup.freed import sees_every_repository
from registryui.lib.reference import reference_url
from registryui.teams.models import Level, Team
from registryui.teams.patterns import matches, patterns_q
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
    """The blobs several visible repositories reference, and who references them: every
    other blob belongs to one repository alone, whose ``size`` counts it once."""

    def __init__(self, links: list[SharedLink]) -> None:
        self.holders: dict[int, set[int]] = defaultdict(set)
        self.blob_size: dict[int, int] = {}
        self.blobs_of: dict[int, list[int]] = defaultdict(list)
        self.names: dict[int, str] = {}
        self.namespaces: dict[str, set[int]] = defaultdict(set)
        for link in links:
            self.holders[link.blob_id].add(link.repository_id)
            self.blob_size[link.blob_id] = link.size
            self.names[link.repository_id] = link.name
            self.namespaces[link.namespace].add(link.repository_id)
        for blob_id, holders in self.holders.items():
            for repository_id in holders:
                self.blobs_of[repository_id].append(blob_id)

    @property
    def shared_between(self) -> int:
        return sum(self.blob_size[b] for b, holders in self.holders.items() if len(holders) > 1)

    def figure(
        self, name: str, size_sum: int, count: int, members: set[int], url: str = ""
    ) -> Figure:
        """A group of repositories whose own bytes add up to ``size_sum``; ``members`` are
        those of them that hold shared blobs."""
        repeats = leaving = 0
        for blob_id in {b for r in members for b in self.blobs_of.get(r, ())}:
            holders = self.holders[blob_id]
            inside = len(holders & members)
            repeats += self.blob_size[blob_id] * (inside - 1)
            if inside < len(holders):
                leaving += self.blob_size[blob_id]
        referenced = size_sum - repeats
        return Figure(name, referenced, referenced - leaving, count, url)


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
        return [
            self.sharing.figure(name, size, 1, {pk}, reference_url(name))
            for pk, name, size in self.queryset.values_list("id", "name", "size")[index]
        ]

    def __iter__(self):
        return iter(self[0 : self.count()])

    def __eq__(self, other) -> bool:
        return isinstance(other, RepositoryFigures) and list(self) == list(other)


def storage_report(user, *, now: datetime | None = None) -> StorageReport:
    everything = sees_every_repository(user)
    visible = visible_repositories(user)
    q = None if everything else access_for(user).q(Level.VIEW, field="repository__name")
    sharing = _Sharing(shared_links(q))
    totals = visible.aggregate(size=Coalesce(Sum("size"), 0), count=Count("id"))
    namespaces = sorted(
        (
            sharing.figure(
                row["namespace"],
                row["size"],
                row["count"],
                sharing.namespaces.get(row["namespace"], set()),
            )
            for row in visible.order_by()
            .values("namespace")
            .annotate(size=Coalesce(Sum("size"), 0), count=Count("id"))
        ),
        key=lambda f: (-f.referenced, f.name),
    )
    return StorageReport(
        total=sharing.figure("", totals["size"], totals["count"], set(sharing.names)),
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
        holding = {
            pk
            for pk, name in sharing.names.items()
            if any(matches(pattern, name) for pattern in patterns)
        }
        figures.append(sharing.figure(team.name, totals["size"], totals["count"], holding))
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
        rows = StorageSnapshot.objects.filter(scope=StorageSnapshot.Scope.REPOSITORY)
        q = access_for(user).q(Level.VIEW, field="name")
        rows = rows.filter(q) if q is not None else rows
        current: dict[str, int] = {}
        points = []
        total = 0
        for taken_at, name, value in rows.order_by("taken_at", "name").values_list(
            "taken_at", "name", "bytes"
        ):
            total += value - current.get(name, 0)
            current[name] = value
            if points and points[-1][0] == taken_at:
                points[-1] = (taken_at, total)
            elif not points or points[-1][1] != total:
                # A row whose bytes did not change (its exclusive bytes did, through sharing
                # with hidden repositories) adds no point: its time would tell of them.
                points.append((taken_at, total))
    if points:
        points.append((max(now, points[-1][0]), points[-1][1]))
    return Growth(points, distinct=everything)
