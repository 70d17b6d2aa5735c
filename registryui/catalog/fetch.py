"""Fetching a manifest and what it needs (its config blob, an index's platform images).

The sync, the notification handler and cleanup's restore all call it: it sits on the catalog's
layer (registry client and parsing, no resolver, no sync state) so that each of them may.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from registryui.catalog.manifests import (
    FetchedManifest,
    ManifestFormatError,
    apply_config,
    apply_describing_config,
    apply_documents,
    note_unread_document,
    parse_manifest,
)
from registryui.lib.reference import short_digest
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.client import MAX_DOCUMENT_BYTES

#: An SBOM or attestation layer larger than this is not read (its packages are not listed;
#: the page says so and still offers the download). A distribution's SPDX is ~10 MiB.
MAX_ATTACHED_DOCUMENT_BYTES = 32 * 1024 * 1024


def _interrupted() -> RegistryError:
    return RegistryError("The sync was interrupted.", code="INTERRUPTED")


class ManifestFetcher:
    """Fetches each unknown digest once per run, however many repositories or threads want it.

    Content addressing makes this safe: whichever repository we fetch a digest through, its
    manifest and config are the same bytes. ``known`` holds the digests already stored.
    """

    def __init__(
        self,
        client: RegistryClient,
        known: set[str],
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.known = known
        self.fetched = 0
        self.should_stop = should_stop
        self._lock = threading.Lock()
        # Finished fetches stay here until stored(), so that a repository whose own sync
        # failed does not make the next repository with the same digest fetch it again.
        self._inflight: dict[str, Future] = {}

    def ensure(
        self, repository: str, digest: str, *, raw: tuple[str, bytes] | None = None
    ) -> list[FetchedManifest]:
        """The manifests (this one and, for an index, its children) not stored yet.

        ``raw`` is (media type, bytes) of this manifest when the caller has fetched and checked
        it already (by tag): it is not fetched again."""
        with self._lock:
            if digest in self.known:
                return []
            future = self._inflight.get(digest)
            owner = future is None
            if owner:
                future = Future()
                future.set_running_or_notify_cancel()
                self._inflight[digest] = future
        if owner:
            try:
                future.set_result(self._fetch_tree(repository, digest, raw))
            except BaseException as exc:
                future.set_exception(exc)
                with self._lock:
                    self._inflight.pop(digest, None)
                raise
        return future.result()

    def stored(self, digests: Iterable[str]) -> None:
        """These manifests are in the database now: nobody needs to fetch them again."""
        with self._lock:
            for digest in digests:
                self.known.add(digest)
                self._inflight.pop(digest, None)

    def _fetch_tree(
        self, repository: str, digest: str, raw: tuple[str, bytes] | None = None
    ) -> list[FetchedManifest]:
        if self.should_stop():
            raise _interrupted()
        if raw is None:
            ref, body = self.client.get_manifest(repository, digest)
            media_type = ref.media_type
        else:
            media_type, body = raw
        try:
            fetched = parse_manifest(digest, media_type, body)
        except ManifestFormatError as exc:
            raise RegistryError(
                f"The manifest {digest} cannot be read.",
                code="INVALID_RESPONSE",
                detail=str(exc),
            ) from exc
        with self._lock:
            self.fetched += 1
        result: list[FetchedManifest] = []
        if fetched.wants_config:
            apply_config(fetched, self._config(repository, fetched))
        elif fetched.wants_describing_config:
            apply_describing_config(fetched, self._config(repository, fetched))
        self._read_documents(repository, fetched)
        # Children are fetched by this same worker: the request pool stays bounded, and a
        # worker never waits on work that is queued behind it.
        for child in fetched.children:
            try:
                result.extend(self.ensure(repository, child.digest))
            except RegistryError as exc:
                if exc.code == "INTERRUPTED":
                    raise
                raise _wrapped(
                    exc,
                    f"Its platform image {short_digest(child.digest)} "
                    + ("is missing" if exc.not_found else "cannot be read")
                    + f": {exc.message}",
                ) from exc
        result.append(fetched)  # children first, as store_manifests needs them
        return result

    def _config(self, repository: str, fetched: FetchedManifest) -> bytes:
        """The manifest's config blob; a failure says that it was the config that failed."""
        try:
            return self.client.get_blob(repository, fetched.config_digest)
        except RegistryError as exc:
            raise _config_error(fetched.config_digest, exc) from exc

    def _read_documents(self, repository: str, fetched: FetchedManifest) -> None:
        """An SBOM's or attestation's layers, read once (the manifest is content-addressed).

        A missing or oversized layer is noted on the manifest (that will not change); any
        other failure fails the tag like a config would, so that the next sync tries again."""
        documents = []
        for digest, media_type in fetched.wants_documents:
            if self.should_stop():
                raise _interrupted()
            try:
                body = self.client.get_blob(
                    repository, digest, max_bytes=MAX_ATTACHED_DOCUMENT_BYTES
                )
            except RegistryError as exc:
                if exc.code == "INVALID_RESPONSE" and "more than" in exc.detail:
                    limit = MAX_ATTACHED_DOCUMENT_BYTES // (1024 * 1024)
                    problem = f"The document is larger than {limit} MiB, which is not read."
                elif exc.not_found:
                    problem = "The document's blob is missing from the registry."
                else:
                    raise _wrapped(
                        exc,
                        f"Its attached document {short_digest(digest)} cannot be read: "
                        f"{exc.message}",
                    ) from exc
                note_unread_document(fetched, digest, problem)
                continue
            documents.append((digest, media_type, body))
        apply_documents(fetched, documents)


def _wrapped(exc: RegistryError, message: str) -> RegistryError:
    """``exc`` with a message that says which part of the image failed (same code)."""
    return RegistryError(message, code=exc.code, status=exc.status, detail=exc.detail)


def _config_error(digest: str, exc: RegistryError) -> RegistryError:
    if exc.not_found:
        return _wrapped(exc, f"Its config blob {short_digest(digest)} is missing.")
    if exc.code == "INVALID_RESPONSE" and "more than" in exc.detail:
        limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
        return _wrapped(exc, f"Its config blob is larger than {limit} MiB, which is not read.")
    return _wrapped(exc, f"Its config blob cannot be read: {exc.message}")
