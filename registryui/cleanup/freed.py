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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from registryui.catalog.models import IndexChild, Layer, Manifest, Tag, blob_sizes
from registryui.lib.iters import chunked

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


def _holders(digests: set[str]) -> set[int]:
    """Manifests that reference any of these blobs (as themselves, their config or a layer)."""
    found: set[int] = set()
    for chunk in chunked(digests):
        found.update(Manifest.objects.filter(digest__in=chunk).values_list("id", flat=True))
        found.update(Manifest.objects.filter(config_digest__in=chunk).values_list("id", flat=True))
        found.update(Layer.objects.filter(digest__in=chunk).values_list("manifest_id", flat=True))
    return found


def _linked_after(holders: set[int], deleted: Mapping[int, set[int]]) -> set[int]:
    """The holders still linked in some repository once ``deleted`` (repo → ids) is gone."""
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
            Tag.objects.filter(manifest_id__in=chunk)
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


def estimate_freed(deletions: Mapping[int, Iterable[str]]) -> Freed:
    """Bytes freed once the given digests are deleted from the given repositories (by id)."""
    wanted = {repo: set(digests) for repo, digests in deletions.items()}
    all_digests = set().union(*wanted.values()) if wanted else set()
    if not all_digests:
        return Freed()
    ids: dict[str, int] = {}
    for chunk in chunked(all_digests):
        ids.update(Manifest.objects.filter(digest__in=chunk).values_list("digest", "id"))
    deleted = {repo: {ids[d] for d in digests if d in ids} for repo, digests in wanted.items()}
    blobs = blob_sizes(ids.values())
    live = _linked_after(_holders(set(blobs)), deleted)
    kept = blob_sizes(live, only=set(blobs)) if live else {}
    freed = {d: s for d, s in blobs.items() if d not in kept}
    return Freed(
        bytes=sum(freed.values()),
        blobs=len(freed),
        shared_blobs=len(kept),
        shared_bytes=sum(kept.values()),
        unknown_manifests=len(all_digests - ids.keys()),
    )
