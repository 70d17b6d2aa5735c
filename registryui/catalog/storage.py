"""Storage insight, precomputed: which blobs each repository references, and snapshots of the
bytes after every sync.

Registry storage keeps each blob (manifest, config, layer) once, under
``docker/registry/v2/blobs``, however many repositories and images use it; garbage-collect
deletes the blobs no linked manifest references. So the questions "how many bytes does this
repository hold, how many does it share, what would deleting it free" are questions about
sets of blobs. Answering them at page time from the manifests and layers of 100k tags would
read every layer row; instead each repository keeps its set of blobs (``RepositoryBlob``),
rewritten by ``link_blobs`` whenever its tags change (``Repository.refresh_stats``, which the
sync, the notification handler and cleanup actions all call), and each ``Blob`` keeps how many
repositories reference it. A page then reads one row per repository and the links of the few
blobs that more than one repository references (``shared_links``): every other blob belongs
to exactly one repository, whose ``size`` already counts it.

The figures for a viewer (only the repositories they may see) are computed from these rows by
``registryui.storage.figures``, above the resolver; nothing here knows who asks.

What the database cannot know: a manifest still linked in a repository but no longer tagged
(pushed by digest, or left behind when its tag moved). garbage-collect keeps its blobs; they are
not counted here, as in ``cleanup.freed``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from registryui.lib.iters import chunked

from . import bulk
from .manifests import FetchedManifest
from .models import Blob, Layer, Manifest, Repository, RepositoryBlob, StorageSnapshot

#: Snapshots keep every sync's row this long, then one per day, then one per week.
DAYS_AT_FULL = 2
WEEKS_AT_DAILY = 8


@dataclass
class Wanted:
    size: int
    kind: str
    image_size: int = 0
    images: int = 0
    tagged: bool = False


def wanted_blobs(manifest_ids: Iterable[int], tagged_ids: set[int]) -> dict[str, Wanted]:
    """digest → what the repository holds of it, for these live manifests."""
    wanted: dict[str, Wanted] = {}
    for chunk in chunked(set(manifest_ids)):
        rows = Manifest.objects.filter(id__in=chunk).values_list(
            "id", "digest", "size", "kind", "total_size", "config_digest", "config_size"
        )
        image_ids = set()
        for pk, digest, size, kind, total_size, config_digest, config_size in rows:
            blob = wanted.setdefault(digest, Wanted(size, Blob.Kind.MANIFEST, total_size))
            blob.images += 1
            blob.tagged = blob.tagged or pk in tagged_ids
            if kind != Manifest.Kind.INDEX:
                image_ids.add(pk)
            if config_digest:
                wanted.setdefault(config_digest, Wanted(config_size, Blob.Kind.CONFIG)).images += 1
        layers = Layer.objects.filter(manifest_id__in=chunk).values_list(
            "manifest_id", "digest", "size"
        )
        seen: set[tuple[int, str]] = set()
        for manifest_id, digest, size in layers:
            if (manifest_id, digest) in seen:
                continue  # a layer listed twice in one image is one use
            seen.add((manifest_id, digest))
            blob = wanted.setdefault(digest, Wanted(size, Blob.Kind.LAYER))
            if manifest_id in image_ids:
                blob.images += 1
    return wanted


def wanted_from_fetched(
    fetched: Iterable[FetchedManifest], tagged_digests: set[str]
) -> dict[str, Wanted]:
    """``wanted_blobs`` from manifests in memory (a sync that has just fetched and stored
    every manifest a repository holds), without reading them back: the same figures."""
    wanted: dict[str, Wanted] = {}
    for manifest in {m.digest: m for m in fetched}.values():
        blob = wanted.setdefault(
            manifest.digest, Wanted(manifest.size, Blob.Kind.MANIFEST, manifest.total_size)
        )
        blob.images += 1
        blob.tagged = blob.tagged or manifest.digest in tagged_digests
        if manifest.config_digest:
            config = wanted.setdefault(
                manifest.config_digest, Wanted(manifest.config_size, Blob.Kind.CONFIG)
            )
            config.images += 1
        if manifest.kind == Manifest.Kind.INDEX:
            continue
        seen: set[str] = set()
        for layer in manifest.layers:
            if layer.digest in seen:
                continue  # a layer listed twice in one image is one use
            seen.add(layer.digest)
            wanted.setdefault(layer.digest, Wanted(layer.size, Blob.Kind.LAYER)).images += 1
    return wanted


def link_blobs(
    repository: Repository,
    manifest_ids: Iterable[int],
    tagged_ids: set[int],
    *,
    wanted: dict[str, Wanted] | None = None,
    new: bool = False,
) -> int:
    """Make the repository's blob links exactly those of these live manifests; its bytes.

    Idempotent, and convergent under concurrent writers: the counts of every blob whose links
    changed are recounted from the links themselves, not incremented.

    A sync that has just created the repository passes what it knows, to save the queries
    that would read it back: ``wanted`` (``wanted_from_fetched``) and ``new`` (created in the
    caller's transaction: it has no links yet, and no other writer can add one before the
    commit, so they are inserted without a conflict check).
    """
    if wanted is None:
        wanted = wanted_blobs(manifest_ids, tagged_ids)
    existing = (
        {}
        if new
        else {
            digest: (link_id, blob_id, images, tagged)
            for link_id, blob_id, digest, images, tagged in RepositoryBlob.objects.filter(
                repository=repository
            ).values_list("id", "blob_id", "blob__digest", "images", "tagged")
        }
    )
    # Sorted: concurrent writers insert and lock shared rows in one order (no deadlock).
    missing = sorted(digest for digest in wanted if digest not in existing)
    blob_ids = _blob_ids(missing, wanted)
    touched: set[int] = set()
    to_update: list[RepositoryBlob] = []
    for digest, (link_id, blob_id, images, tagged) in existing.items():
        blob = wanted.get(digest)
        if blob is not None and (blob.images, blob.tagged) != (images, tagged):
            to_update.append(RepositoryBlob(id=link_id, images=blob.images, tagged=blob.tagged))
            touched.add(blob_id)
    gone = {link_id: blob_id for d, (link_id, blob_id, _, _) in existing.items() if d not in wanted}
    # A new repository's caller holds a transaction that is undone whole on an error: no
    # savepoint of its own (two round trips fewer).
    with transaction.atomic(savepoint=not new):
        links = [
            RepositoryBlob(
                repository=repository,
                blob_id=blob_ids[digest],
                images=wanted[digest].images,
                tagged=wanted[digest].tagged,
            )
            for digest in missing
        ]
        if new:
            # A repository created in the caller's transaction: no one else has linked it.
            bulk.insert(RepositoryBlob, links)
        else:
            RepositoryBlob.objects.bulk_create(links, batch_size=500, ignore_conflicts=True)
        RepositoryBlob.objects.bulk_update(to_update, ["images", "tagged"], batch_size=500)
        for chunk in chunked(list(gone)):
            RepositoryBlob.objects.filter(id__in=chunk).delete()
        recount(touched | set(gone.values()) | {blob_ids[d] for d in missing})
    return sum(blob.size for blob in wanted.values())


def _blob_ids(digests: list[str], wanted: dict[str, Wanted]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in chunked(digests):
        ids.update(Blob.objects.filter(digest__in=chunk).values_list("digest", "id"))
    missing = [d for d in digests if d not in ids]
    if missing:
        # Shared by every repository: another writer may be creating one of them just now.
        bulk.insert_or_skip(
            Blob,
            [
                Blob(
                    digest=d,
                    size=wanted[d].size,
                    kind=wanted[d].kind,
                    image_size=wanted[d].image_size,
                )
                for d in missing
            ],
        )
        for chunk in chunked(missing):
            ids.update(Blob.objects.filter(digest__in=chunk).values_list("digest", "id"))
    return ids


def recount(blob_ids: Iterable[int]) -> None:
    """Recount how many repositories and images reference each of these blobs."""
    links = RepositoryBlob.objects.filter(blob_id=OuterRef("pk")).values("blob_id")
    for chunk in chunked(sorted(set(blob_ids))):
        Blob.objects.filter(id__in=chunk).update(
            repository_count=Coalesce(
                Subquery(links.annotate(n=Count("id")).values("n")[:1]),
                Value(0),
                output_field=IntegerField(),
            ),
            image_count=Coalesce(
                Subquery(links.annotate(n=Sum("images")).values("n")[:1]),
                Value(0),
                output_field=IntegerField(),
            ),
        )


# A repository removed by a sync takes its links with it (a cascade): recount their blobs.
@receiver(pre_delete, sender=Repository, dispatch_uid="storage-repository-pre-delete")
def _remember_blobs(sender, instance: Repository, **kwargs) -> None:
    instance._storage_blob_ids = list(
        RepositoryBlob.objects.filter(repository_id=instance.pk).values_list("blob_id", flat=True)
    )


@receiver(post_delete, sender=Repository, dispatch_uid="storage-repository-post-delete")
def _recount_blobs(sender, instance: Repository, **kwargs) -> None:
    recount(getattr(instance, "_storage_blob_ids", ()))


# -- the rows pages read ----------------------------------------------------------------------


@dataclass(frozen=True)
class SharedLink:
    blob_id: int
    size: int
    repository_id: int
    name: str
    namespace: str


def shared_links(repositories: Q | None = None) -> list[SharedLink]:
    """Links of the blobs more than one repository references, limited to the repositories
    this filter on ``repository__…`` keeps (None: all). Every other blob is its one
    repository's alone."""
    rows = RepositoryBlob.objects.filter(blob__repository_count__gt=1)
    if repositories is not None:
        rows = rows.filter(repositories)
    return [
        SharedLink(*row)
        for row in rows.values_list(
            "blob_id", "blob__size", "repository_id", "repository__name", "repository__namespace"
        ).iterator(chunk_size=5000)
    ]


def distinct_bytes(sizes: dict[int, int], links: Iterable[SharedLink]) -> int:
    """Bytes of the distinct blobs of these repositories (id → size): each repository's bytes,
    less the repeats of the blobs several of them share (``links`` of those repositories)."""
    holders: dict[int, int] = defaultdict(int)
    blob_size: dict[int, int] = {}
    for link in links:
        if link.repository_id in sizes:
            holders[link.blob_id] += 1
            blob_size[link.blob_id] = link.size
    return sum(sizes.values()) - sum(blob_size[b] * (n - 1) for b, n in holders.items())


# -- snapshots after a sync -------------------------------------------------------------------


def record_snapshot(now: datetime | None = None) -> int:
    """Write the registry's, each namespace's and each repository's bytes where they changed
    since their last row, then thin old rows; the number of rows written."""
    now = now or timezone.now()
    backfill()
    repositories = list(Repository.objects.values_list("id", "name", "namespace", "size"))
    links = shared_links()
    holders: dict[int, set[int]] = defaultdict(set)
    blob_size: dict[int, int] = {}
    for link in links:
        holders[link.blob_id].add(link.repository_id)
        blob_size[link.blob_id] = link.size
    shared_in: dict[int, list[int]] = defaultdict(list)
    for blob_id, repos in holders.items():
        for repository_id in repos:
            shared_in[repository_id].append(blob_id)
    figures: dict[tuple[str, str], tuple[int, int]] = {}
    sizes = {pk: size for pk, _, _, size in repositories}
    figures[(StorageSnapshot.Scope.REGISTRY, "")] = (distinct_bytes(sizes, links), 0)
    namespaces: dict[str, dict[int, int]] = defaultdict(dict)
    for pk, name, namespace, size in repositories:
        namespaces[namespace].update({pk: size})
        shared = sum(blob_size[b] for b in shared_in.get(pk, ()))
        figures[(StorageSnapshot.Scope.REPOSITORY, name)] = (size, size - shared)
    for namespace, members in namespaces.items():
        inside = distinct_bytes(members, links)
        leaving = {
            b for pk in members for b in shared_in.get(pk, ()) if not holders[b] <= members.keys()
        }
        figures[(StorageSnapshot.Scope.NAMESPACE, namespace)] = (
            inside,
            inside - sum(blob_size[b] for b in leaving),
        )
    latest = _latest_rows()
    # A scope that is gone (a repository removed) gets a last row of zero bytes.
    for key, (value, _) in latest.items():
        if key not in figures and value:
            figures[key] = (0, 0)
    rows = [
        StorageSnapshot(taken_at=now, scope=scope, name=name, bytes=value, exclusive=exclusive)
        for (scope, name), (value, exclusive) in figures.items()
        if latest.get((scope, name)) != (value, exclusive)
    ]
    StorageSnapshot.objects.bulk_create(rows, batch_size=500)
    thin(now)
    Blob.objects.filter(repository_count=0).delete()
    return len(rows)


def backfill() -> int:
    """Link the blobs of repositories that have tags but no links yet (synced before this
    table existed); the number of repositories linked."""
    unlinked = Repository.objects.filter(tag_count__gt=0).exclude(
        Exists(RepositoryBlob.objects.filter(repository_id=OuterRef("pk")))
    )
    count = 0
    for repository in unlinked.iterator(chunk_size=500):
        repository.refresh_stats()
        count += 1
    return count


def _latest_rows() -> dict[tuple[str, str], tuple[int, int]]:
    latest: dict[tuple[str, str], tuple[int, int]] = {}
    rows = StorageSnapshot.objects.order_by("scope", "name", "taken_at").values_list(
        "scope", "name", "bytes", "exclusive"
    )
    for scope, name, value, exclusive in rows.iterator(chunk_size=5000):
        latest[(scope, name)] = (value, exclusive)
    return latest


def thin(now: datetime) -> int:
    """Keep the last row of each scope per day after ``DAYS_AT_FULL`` days and per ISO week
    after ``WEEKS_AT_DAILY`` weeks; the number of rows deleted. Each pass only reads rows of
    the finer resolution, so the work per sync stays small."""
    deleted = 0
    resolution = StorageSnapshot.Resolution
    steps = (
        # Whole days and weeks only: a bucket is thinned once, when all of it is old enough.
        (resolution.SYNC, resolution.DAY, _day_start(now - timedelta(days=DAYS_AT_FULL)), _day),
        (
            resolution.DAY,
            resolution.WEEK,
            _week_start(now - timedelta(weeks=WEEKS_AT_DAILY)),
            _week,
        ),
    )
    for finer, coarser, cutoff, bucket in steps:
        old = StorageSnapshot.objects.filter(resolution=finer, taken_at__lt=cutoff)
        keep: dict[tuple[str, str, object], int] = {}
        drop: list[int] = []
        for pk, scope, name, taken_at in old.order_by("taken_at", "pk").values_list(
            "pk", "scope", "name", "taken_at"
        ):
            key = (scope, name, bucket(taken_at))
            if key in keep:
                drop.append(keep[key])
            keep[key] = pk
        for chunk in chunked(drop):
            deleted += StorageSnapshot.objects.filter(pk__in=chunk).delete()[0]
        for chunk in chunked(list(keep.values())):
            StorageSnapshot.objects.filter(pk__in=chunk).update(resolution=coarser)
    return deleted


def _day(moment: datetime) -> object:
    return moment.astimezone(UTC).date()


def _week(moment: datetime) -> object:
    return tuple(moment.astimezone(UTC).isocalendar())[:2]


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time.min, tzinfo=UTC)


def _week_start(moment: datetime) -> datetime:
    day = _day_start(moment)
    return day - timedelta(days=day.weekday())
