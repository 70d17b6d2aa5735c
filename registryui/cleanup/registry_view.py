"""What the registry says right now about one repository, read for a deletion just before it.

The confirmation page was computed from the database; the Deleter (``actions``) asks this view
instead, so that a tag pushed or deleted since decides what is done. Each tag is asked at
most once per execution unless a fresh answer is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from registryui.catalog.manifests import ManifestFormatError, parse_manifest
from registryui.registry import ManifestRef, RegistryClient, RegistryError
from registryui.registry.client import sha256_digest
from registryui.registry.mediatypes import INDEX_TYPES


class RegistryView:
    """What the registry says right now about one repository, each tag asked at most once."""

    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name
        self.heads: dict[str, ManifestRef | None] = {}
        self._children: dict[str, list[str]] = {}

    def head(self, tag: str, *, fresh: bool = False) -> ManifestRef | None:
        if fresh or tag not in self.heads:
            try:
                self.heads[tag] = self.client.head_manifest(self.name, tag)
            except RegistryError as exc:
                if not exc.missing:
                    raise
                self.heads[tag] = None
        return self.heads[tag]

    def all_tags(self, known: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every tag of the repository with its digest: the tags list, then a HEAD per tag.

        A digest deletion takes every tag on it, so this errs towards seeing a tag: the tags
        the database ``known`` are asked too (a list that leaves one out must not hide it), a
        listed tag whose HEAD says 404 is asked twice more, and a tag whose HEAD disagrees with
        the database (or that the database does not know) is fetched and its digest computed
        from its bytes: a wrong ``Docker-Content-Digest`` must not hide a sibling.
        """
        known = dict(known or {})
        try:
            listed = self.client.list_tags(self.name)
        except RegistryError as exc:
            if exc.code != "NAME_UNKNOWN":
                raise
            listed = []
        names = list(dict.fromkeys([*listed, *known]))
        todo = [n for n in names if n not in self.heads]
        if todo:
            workers = max(1, min(settings.SYNC_CONCURRENCY, len(todo)))
            with ThreadPoolExecutor(workers, thread_name_prefix="cleanup-head") as pool:
                # list() re-raises the first RegistryError of any HEAD here, in this thread.
                list(pool.map(self.head, todo))
        for name in listed:
            for _ in range(2):
                if self.heads.get(name) is not None:
                    break
                self.head(name, fresh=True)
        for name in names:
            ref = self.heads.get(name)
            if ref is not None and known.get(name) != ref.digest:
                self.heads[name] = self._verified(name, ref)
        return {n: ref.digest for n in names if (ref := self.heads.get(n)) is not None}

    def _verified(self, tag: str, ref: ManifestRef) -> ManifestRef | None:
        """The tag's manifest fetched, its digest computed from the bytes."""
        try:
            fetched, body = self.client.get_manifest(self.name, tag)
        except RegistryError as exc:
            if exc.missing:
                return ref  # keep what the HEAD said: seeing a tag too many is the safe side
            raise
        return ManifestRef(sha256_digest(body), fetched.media_type or ref.media_type, len(body))

    def children_of(self, digest: str) -> list[str]:
        """Children of a digest the database has never seen (re-pushed since the last sync)."""
        if digest not in self._children:
            media_types = {r.media_type for r in self.heads.values() if r and r.digest == digest}
            if media_types and not media_types & INDEX_TYPES:
                self._children[digest] = []
            else:
                ref, body = self.client.get_manifest(self.name, digest)
                try:
                    fetched = parse_manifest(digest, ref.media_type, body)
                    self._children[digest] = [child.digest for child in fetched.children]
                except ManifestFormatError:
                    self._children[digest] = []
        return self._children[digest]
