"""How many bytes garbage-collect gives back after manifests are deleted.

Registry storage keeps each blob (layer, config, manifest) once, shared by every repository.
``registry garbage-collect`` (without ``--delete-untagged``) keeps every blob referenced by a
manifest still *linked* in any repository, and deletes the rest. So the bytes freed by deleting
some manifests from some repositories are the blobs those manifests reference that no manifest
still linked anywhere references.

What the database knows as linked: tagged manifests, and the platform manifests of tagged
indexes. A manifest pushed by digest only, or left untagged by moving its last tag away, is
linked too but invisible to us; a blob it shares would stay. The estimate can therefore be too
high only in that case, and the UI says so.

Who asks matters. Whether a blob is shared with an image in a repository the user cannot see
is itself something they may not learn (an image there "starts using the layer" and the figure
drops). So a user who cannot see every repository gets ``Freed.as_seen_by(user)``: the same
estimate counting only the images *they* can see as keeping a blob. That figure cannot change
with hidden data; it is an upper bound (``bound``), and pages say "up to N; blobs may be shared
with images you cannot see". Users who see everything keep the exact figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db.models import QuerySet

from registryui.catalog.models import IndexChild, Layer, Manifest, Tag, blob_sizes
from registryui.lib.iters import chunked
from registryui.teams.models import Level
from registryui.teams.permissions import access_for, visible_tags

#: Indexes of indexes are rare; this bounds the walk up the parents on malformed data.
MAX_NESTING = 8


@dataclass(frozen=True)
class Freed:
    """The blobs that become unreferenced: their count and bytes."""

    bytes: int = 0
    blobs: int = 0
    #: Blobs of the deleted manifests that stay because other manifests use them.
    shared_blobs: int = 0
    shared_bytes: int = 0
    #: Deleted manifests the database has never seen: their blobs are not counted.
    unknown_manifests: int = 0
    #: Counted over the images one user can see: at most this much is freed.
    bound: bool = False
    #: What was estimated (repository id → digests), to estimate it again for one viewer.
    deletions: Mapping[int, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def as_seen_by(self, user) -> Freed:
        """The figure ``user`` may see: exact for who sees every repository, else the bound."""
        if self.bound or not self.deletions or sees_every_repository(user):
            return self
        return estimate_freed(self.deletions, seen_by=user)


def sees_every_repository(user) -> bool:
    return access_for(user).q(Level.VIEW) is None


def _holders(digests: set[str]) -> set[int]:
    """Manifests that reference any of these blobs (as themselves, their config or a layer)."""
    found: set[int] = set()
    for chunk in chunked(digests):
        found.update(Manifest.objects.filter(digest__in=chunk).values_list("id", flat=True))
        found.update(Manifest.objects.filter(config_digest__in=chunk).values_list("id", flat=True))
        found.update(Layer.objects.filter(digest__in=chunk).values_list("manifest_id", flat=True))
    return found


def _linked_after(
    holders: set[int], deleted: Mapping[int, set[int]], tags: QuerySet | None = None
) -> set[int]:
    """The holders still linked in some repository once ``deleted`` (repo → ids) is gone.

    ``tags`` narrows which tags count as links (those a user can see); default: all of them.
    """
    tags = Tag.objects.all() if tags is None else tags
    parents: dict[int, set[int]] = {}
    frontier, seen = set(holders), set(holders)
    for _ in range(MAX_NESTING):
        if not frontier:
            break
        found: set[int] = set()
        for chunk in chunked(frontier):
            for index_id, child_id in IndexChild.objects.filter(child_id__in=chunk).values_list(
                "index_id", "child_id"
            ):
                parents.setdefault(child_id, set()).add(index_id)
                found.add(index_id)
        frontier = found - seen
        seen |= found
    tagged_in: dict[int, set[int]] = {}
    for chunk in chunked(seen):
        rows = (
            tags.filter(manifest_id__in=chunk)
            .values_list("manifest_id", "repository_id")
            .distinct()
        )
        for manifest_id, repository_id in rows:
            tagged_in.setdefault(manifest_id, set()).add(repository_id)

    memo: dict[int, frozenset[int]] = {}

    def repositories(manifest_id: int, depth: int = 0) -> frozenset[int]:
        if manifest_id in memo:
            return memo[manifest_id]
        memo[manifest_id] = frozenset()  # a cycle (malformed data) links nothing
        linked = set(tagged_in.get(manifest_id, ()))
        if depth < MAX_NESTING:
            for parent in parents.get(manifest_id, ()):
                linked |= repositories(parent, depth + 1)
        result = frozenset(r for r in linked if manifest_id not in deleted.get(r, ()))
        memo[manifest_id] = result
        return result

    return {m for m in holders if repositories(m)}


def estimate_freed(deletions: Mapping[int, Iterable[str]], *, seen_by=None) -> Freed:
    """Bytes freed once the given digests are deleted from the given repositories (by id).

    With ``seen_by``, only the tags that user can see keep a blob: the upper bound of
    ``Freed.as_seen_by``.
    """
    wanted = {repo: frozenset(digests) for repo, digests in deletions.items()}
    all_digests = set().union(*wanted.values()) if wanted else set()
    if not all_digests:
        return Freed()
    ids: dict[str, int] = {}
    for chunk in chunked(all_digests):
        ids.update(Manifest.objects.filter(digest__in=chunk).values_list("digest", "id"))
    deleted = {repo: {ids[d] for d in digests if d in ids} for repo, digests in wanted.items()}
    blobs = blob_sizes(ids.values())
    tags = visible_tags(seen_by, Tag.objects.all()) if seen_by is not None else None
    live = _linked_after(_holders(set(blobs)), deleted, tags)
    kept = blob_sizes(live, only=set(blobs)) if live else {}
    freed = {d: s for d, s in blobs.items() if d not in kept}
    return Freed(
        bytes=sum(freed.values()),
        blobs=len(freed),
        shared_blobs=len(kept),
        shared_bytes=sum(kept.values()),
        unknown_manifests=len(all_digests - ids.keys()),
        bound=seen_by is not None,
        deletions=wanted,
    )
