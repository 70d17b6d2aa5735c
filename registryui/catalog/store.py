"""Writing what the registry told us into the database: manifests, tags, repositories.

Used by the full sync, by the notification handler and by cleanup actions, so that all three
write the same rows the same way. Every function here is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from registryui.lib.iters import chunked
from registryui.lib.natural import natural_key

from . import bulk
from .artifacts import is_attachment_tag
from .lineage import layer_chains
from .manifests import FetchedManifest, summarise_index
from .models import IndexChild, Label, Layer, Manifest, Repository, SbomPackage, Tag


def manifest_ids(digests: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunked(set(digests)):
        found.update(Manifest.objects.filter(digest__in=chunk).values_list("digest", "id"))
    return found


def store_manifests(fetched: Iterable[FetchedManifest]) -> dict[str, int]:
    """Insert the manifests not stored yet, children before their indexes; digest → id.

    Safe against a concurrent writer storing the same digest: rows are inserted with
    ``ignore_conflicts`` and their ids read back.
    """
    by_digest = {m.digest: m for m in fetched}
    ids = manifest_ids(by_digest)
    for digest in ids:
        by_digest.pop(digest, None)
    if not by_digest:
        return ids
    # Children the index entries point at may already be stored; we need their ids too.
    child_digests = {c.digest for m in by_digest.values() for c in m.children}
    ids.update(manifest_ids(child_digests - ids.keys() - by_digest.keys()))

    pending = dict(by_digest)
    while pending:
        ready = [m for m in pending.values() if all(c.digest in ids for c in m.children)]
        if not ready:
            missing = {c.digest for m in pending.values() for c in m.children} - ids.keys()
            raise ValueError(f"index children were never fetched: {sorted(missing)[:3]}")
        _insert(ready, ids)
        for m in ready:
            pending.pop(m.digest)
    return ids


def _insert(batch: list[FetchedManifest], ids: dict[str, int]) -> None:
    now = timezone.now()
    child_ids = [ids[c.digest] for f in batch for c in f.children]
    stored_children = (
        {
            m.id: m
            for m in Manifest.objects.filter(id__in=child_ids).only("id", "total_size", "created")
        }
        if child_ids
        else {}
    )
    for fetched in batch:
        if fetched.kind == "index":
            summarise_index(
                fetched, {c.digest: stored_children.get(ids[c.digest]) for c in fetched.children}
            )
    manifests = [
        Manifest(
            digest=f.digest,
            media_type=f.media_type[:255],
            kind=f.kind,
            size=f.size,
            total_size=f.total_size,
            raw=f.raw_text,
            config_digest=f.config_digest,
            config_media_type=f.config_media_type[:255],
            config_size=f.config_size,
            created=f.created,
            os=f.os[:64],
            architecture=f.architecture[:64],
            variant=f.variant[:64],
            platforms=f.platforms[:512],
            labels=f.labels,
            config=f.config,
            history=f.history,
            fetched_at=now,
            artifact_type=f.artifact_type[:255],
            subject_digest=f.subject_digest,
            annotations=f.annotations,
            attached_kinds=f.attached_kinds,
            details=f.details,
            top_chain=(_chains(f) or [""])[-1],
        )
        for f in batch
    ]
    if bulk.copies():
        # The fast way (COPY), in a savepoint: the rows of manifests this transaction inserts
        # cannot conflict with anyone's, but the manifests themselves can, with a concurrent
        # writer that stored one of these digests since we looked.
        inserted: dict[str, int] = {}
        try:
            with transaction.atomic():
                bulk.insert(Manifest, manifests)
                inserted = manifest_ids(f.digest for f in batch)
                for model, rows in _parts(batch, {**ids, **inserted}):
                    bulk.insert(model, rows)
        except IntegrityError:
            pass  # the way below skips what is there already
        else:
            ids.update(inserted)
            return
    Manifest.objects.bulk_create(manifests, ignore_conflicts=True, batch_size=200)
    ids.update(manifest_ids(f.digest for f in batch))
    for model, rows in _parts(batch, ids):
        model.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)


def _parts(
    batch: list[FetchedManifest], ids: dict[str, int]
) -> list[tuple[type[models.Model], list[models.Model]]]:
    """The rows each manifest of ``batch`` (stored, ids in ``ids``) is made of."""
    return [
        (
            Layer,
            [
                Layer(
                    manifest_id=ids[f.digest],
                    position=i,
                    digest=layer.digest,
                    size=layer.size,
                    media_type=layer.media_type[:255],
                    chain=chain,
                )
                for f in batch
                for i, (layer, chain) in enumerate(zip(f.layers, _chains(f), strict=True))
            ],
        ),
        (
            SbomPackage,
            [
                SbomPackage(
                    manifest_id=ids[f.digest],
                    position=i,
                    name=package.name,
                    version=package.version,
                    licence=package.licence,
                    purl=package.purl,
                )
                for f in batch
                for i, package in enumerate(f.packages)
            ],
        ),
        (
            Label,
            [
                Label(
                    manifest_id=ids[f.digest],
                    key=key[:255],
                    value=value[: Label.VALUE_MAX_LENGTH],
                )
                for f in batch
                for key, value in f.labels.items()
            ],
        ),
        (
            IndexChild,
            [
                IndexChild(
                    index_id=ids[f.digest],
                    child_id=ids[c.digest],
                    position=i,
                    os=c.os[:64],
                    architecture=c.architecture[:64],
                    variant=c.variant[:64],
                    os_version=c.os_version[:128],
                    is_attestation=c.is_attestation,
                )
                for f in batch
                for i, c in enumerate(f.children)
            ],
        ),
    ]


def _chains(fetched: FetchedManifest) -> list[str]:
    """Layer chains for lineage; none for artifacts (their layers are not file systems)."""
    if fetched.artifact_type or fetched.attached_kinds or fetched.subject_digest:
        return [""] * len(fetched.layers)
    return layer_chains(layer.digest for layer in fetched.layers)


@dataclass
class TagChanges:
    added: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def replace_tags(
    repository: Repository,
    tags: dict[str, str],
    ids: dict[str, int],
    *,
    first_import: bool = False,
    now: datetime | None = None,
    problems: dict[str, str] | None = None,
    created_times: dict[int, datetime | None] | None = None,
    sizes: dict[int, int] | None = None,
    subjects: dict[int, str] | None = None,
    empty: bool = False,
) -> TagChanges:
    """Make the repository's tags exactly ``tags`` (name → digest); every digest is in ``ids``.

    A tag that is new in a repository seen for the first time takes its image's build time as
    ``changed_at`` (we cannot know when it was pushed); any other change takes ``now``.
    ``problems`` (name → reason) are tags that could not be read: an existing one keeps its
    digest and shows the reason (``Tag.sync_problem``), a new one is not created; the tags in
    ``tags`` lose any reason they had. A tag created or moved takes its image's size
    (``Tag.size``) and whether it is an attachment (``Tag.attached``).

    A caller that has them saves queries: ``created_times`` (manifest id → build time) for a
    first import, ``sizes`` (manifest id → ``total_size``) with ``subjects`` (manifest id →
    ``subject_digest``, for the same ids), ``empty`` for a repository it has just created in
    its transaction (it has no tags yet, and no other writer can add one before the commit,
    so they are inserted without a conflict check). What it does not pass is read in one
    query per chunk of the images of new and moved tags.
    """
    now = now or timezone.now()
    problems = problems or {}
    existing = (
        {}
        if empty
        else {
            name: (pk, manifest_id, problem)
            for pk, name, manifest_id, problem in repository.tags.values_list(
                "id", "name", "manifest_id", "sync_problem"
            )
        }
    )
    changes = TagChanges()
    new: list[tuple[str, int]] = []
    moved: list[tuple[int, str, int]] = []
    to_flag = []
    for name, digest in tags.items():
        manifest_id = ids[digest]
        current = existing.get(name)
        if current is None:
            new.append((name, manifest_id))
        elif current[1] != manifest_id:
            moved.append((current[0], name, manifest_id))
        elif current[2]:
            to_flag.append(Tag(id=current[0], sync_problem=""))
    for name, reason in problems.items():
        current = existing.get(name)
        if current is not None and current[2] != reason:
            to_flag.append(Tag(id=current[0], sync_problem=reason))
    sizes, subjects, created_times = _images_of(
        {manifest_id for _, manifest_id in new} | {manifest_id for _, _, manifest_id in moved},
        sizes=sizes,
        subjects=subjects,
        created_times=created_times,
        first_import=first_import,
    )
    to_create = []
    for name, manifest_id in new:
        changed = now
        if first_import and created_times.get(manifest_id):
            changed = min(created_times[manifest_id], now)
        to_create.append(
            Tag(
                repository=repository,
                name=name,
                sort_key=natural_key(name),
                manifest_id=manifest_id,
                size=sizes.get(manifest_id, 0),
                attached=is_attachment_tag(name, subjects.get(manifest_id, "")),
                first_seen_at=now,
                changed_at=changed,
            )
        )
    to_update = [
        # Moved with no push event recorded (a sync saw it): the push time is unknown.
        Tag(
            id=pk,
            manifest_id=manifest_id,
            size=sizes.get(manifest_id, 0),
            attached=is_attachment_tag(name, subjects.get(manifest_id, "")),
            changed_at=now,
            pushed_at=None,
            sync_problem="",
        )
        for pk, name, manifest_id in moved
    ]
    gone = [
        pk for name, (pk, _, _) in existing.items() if name not in tags and name not in problems
    ]
    if empty:
        # Created in the caller's transaction: nobody else can have written its tags.
        bulk.insert(Tag, to_create)
    else:
        Tag.objects.bulk_create(to_create, batch_size=500, ignore_conflicts=True)
    Tag.objects.bulk_update(
        to_update,
        ["manifest_id", "size", "attached", "changed_at", "pushed_at", "sync_problem"],
        batch_size=500,
    )
    Tag.objects.bulk_update(to_flag, ["sync_problem"], batch_size=500)
    for chunk in chunked(gone):
        Tag.objects.filter(id__in=chunk).delete()
    changes.added, changes.updated, changes.removed = len(to_create), len(to_update), len(gone)
    return changes


def _images_of(
    wanted: set[int],
    *,
    sizes: dict[int, int] | None,
    subjects: dict[int, str] | None,
    created_times: dict[int, datetime | None] | None,
    first_import: bool,
) -> tuple[dict[int, int], dict[int, str], dict[int, datetime | None]]:
    """Sizes and subjects of the ``wanted`` manifests, and on a first import their build
    times: what the caller passed, the rest read in one query per chunk (none when it passed
    them all)."""
    sizes = dict(sizes or {})
    subjects = dict(subjects or {})
    if first_import and created_times is None:
        times: dict[int, datetime | None] = {}
        for chunk in chunked(wanted):
            rows = Manifest.objects.filter(id__in=chunk).values_list(
                "id", "total_size", "subject_digest", "created"
            )
            for pk, size, subject, created in rows:
                sizes[pk], subjects[pk], times[pk] = size, subject, created
        return sizes, subjects, times
    for chunk in chunked(wanted - (sizes.keys() & subjects.keys())):
        rows = Manifest.objects.filter(id__in=chunk)
        rows = rows.values_list("id", "total_size", "subject_digest")
        for pk, size, subject in rows:
            sizes[pk], subjects[pk] = size, subject
    return sizes, subjects, created_times or {}


def set_tag(
    repository: Repository,
    tag: str,
    manifest_id: int,
    *,
    when: datetime | None = None,
    pushed_at: datetime | None = None,
) -> bool:
    """Point one tag at a manifest (creating it if needed); True when the digest changed.

    ``pushed_at``: the time of the push event that put ``manifest_id`` on the tag (only the
    notification endpoint knows it); a move without it leaves the push time unknown. A later
    push of the same digest moves ``pushed_at`` forward without counting as a change.
    """
    when = when or timezone.now()
    with transaction.atomic():
        current = Tag.objects.select_for_update().filter(repository=repository, name=tag).first()
        image = None
        if current is None or current.manifest_id != manifest_id:
            # Read once: ``Tag.save`` takes ``Tag.size`` and ``Tag.attached`` from the
            # manifest it is given.
            image = _image(manifest_id)
        if current is None:
            try:
                with transaction.atomic():  # a savepoint: PostgreSQL aborts on the error
                    Tag.objects.create(
                        repository=repository,
                        name=tag,
                        manifest=image,
                        first_seen_at=when,
                        changed_at=when,
                        pushed_at=pushed_at,
                    )
            except IntegrityError:
                # A concurrent writer (a sync, another delivery) created it since our look:
                # wait for its row and move it instead.
                current = Tag.objects.select_for_update().get(repository=repository, name=tag)
        if current is not None:
            if current.manifest_id == manifest_id:
                if pushed_at is not None and (
                    current.pushed_at is None or pushed_at > current.pushed_at
                ):
                    Tag.objects.filter(pk=current.pk).update(pushed_at=pushed_at)
                return False
            current.manifest = image or _image(manifest_id)
            current.changed_at = when
            current.pushed_at = pushed_at
            current.save(update_fields=["manifest", "changed_at", "pushed_at"])
        _mark_changed_live(repository, when)
        repository.refresh_stats()
    return True


def _image(manifest_id: int) -> Manifest:
    """The manifest with just what a tag copies from it (``Tag.size``, ``Tag.attached``)."""
    return Manifest.objects.only("id", "total_size", "subject_digest").get(pk=manifest_id)


def remove_tags(repository: Repository, names: Iterable[str]) -> int:
    with transaction.atomic():
        removed, _ = Tag.objects.filter(repository=repository, name__in=list(names)).delete()
        if removed:
            _mark_changed_live(repository)
            repository.refresh_stats()
    return removed


def _mark_changed_live(repository: Repository, when: datetime | None = None) -> None:
    """Note a change made outside a full sync, so that an older sync snapshot of this
    repository is not written over it (see Syncer.store_snapshot)."""
    when = max(when or timezone.now(), timezone.now())
    repository.tags_changed_live_at = when
    Repository.objects.filter(pk=repository.pk).update(tags_changed_live_at=when)
