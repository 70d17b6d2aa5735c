"""The full sync: mirror the registry's catalog, tags and manifests into the database.

Steps: list the catalog (following ``Link``) → list each repository's tags → one HEAD per tag
for its digest → GET the manifest and config only for digests not stored yet → write each
repository's tags in one short transaction → drop repositories the catalog no longer lists.

HTTP runs on a bounded pool of threads; the database is written only by the calling thread,
one repository at a time, so SQLite and PostgreSQL behave the same and a failure in one
repository leaves its previous rows untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registryui.lib.iters import chunked
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.mediatypes import IMAGE_CONFIG_TYPES

from .manifests import FetchedManifest, ManifestFormatError, apply_config, parse_manifest
from .models import Manifest, Repository, SyncRun, SyncRunError
from .store import manifest_ids, replace_tags, store_manifests

log = logging.getLogger(__name__)


@dataclass
class RepositorySnapshot:
    """What the registry said about one repository; built by a worker, stored by the caller."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, FetchedManifest] = field(default_factory=dict)
    #: The registry says the repository does not exist (only meaningful for --repository).
    missing: bool = False
    error: RegistryError | None = None


@dataclass
class Progress:
    repositories_total: int = 0
    repositories_done: int = 0
    repositories_failed: int = 0
    tags_seen: int = 0
    manifests_fetched: int = 0
    requests: int = 0
    started: float = field(default_factory=time.monotonic)
    catalog_complete: bool = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class ManifestFetcher:
    """Fetches each unknown digest once per run, however many repositories or threads want it.

    Content addressing makes this safe: whichever repository we fetch a digest through, its
    manifest and config are the same bytes.
    """

    def __init__(self, client: RegistryClient, known: set[str]) -> None:
        self.client = client
        self.known = known
        self.fetched = 0
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}

    def ensure(self, repository: str, digest: str) -> list[FetchedManifest]:
        """The manifests (this one and, for an index, its children) not stored yet."""
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
                future.set_result(self._fetch_tree(repository, digest))
            except BaseException as exc:
                future.set_exception(exc)
                with self._lock:
                    self._inflight.pop(digest, None)
                raise
        return future.result()

    def _fetch_tree(self, repository: str, digest: str) -> list[FetchedManifest]:
        ref, raw = self.client.get_manifest(repository, digest)
        try:
            fetched = parse_manifest(digest, ref.media_type, raw)
        except (ManifestFormatError, KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"The manifest {digest} cannot be read.", code="INVALID_RESPONSE",
                detail=str(exc),
            ) from exc
        with self._lock:
            self.fetched += 1
        result: list[FetchedManifest] = []
        if fetched.kind == "image" and fetched.config_media_type in IMAGE_CONFIG_TYPES:
            apply_config(fetched, self.client.get_blob(repository, fetched.config_digest))
        for child in fetched.children:
            result.extend(self.ensure(repository, child.digest))
        result.append(fetched)  # children first, as store_manifests needs them
        return result


class Syncer:
    """One sync run. ``run()`` does everything; the steps are separate for tests and the loop."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        concurrency: int | None = None,
        page_size: int | None = None,
        trigger: str = "command",
        stop_event: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency or settings.SYNC_CONCURRENCY
        self.page_size = min(page_size or settings.SYNC_CATALOG_PAGE_SIZE, 1000)
        self.trigger = trigger
        self.stop_event = stop_event or threading.Event()
        self.on_progress = on_progress or (lambda progress: None)
        self.progress = Progress()
        self.run_record: SyncRun | None = None
        self._requests_at_start = 0
        self._kinds_at_start: dict[str, int] = {}

    # -- the whole run ----------------------------------------------------------------------

    def run(self, repository: str | None = None) -> SyncRun:
        run = self.start(scope=repository or "")
        try:
            if repository:
                self.sync_repositories([repository], single=True)
            else:
                names = self.list_catalog()
                self.sync_repositories(names)
                if self.progress.catalog_complete and not self.stopped:
                    self.remove_missing(names)
        except Exception as exc:  # recorded on the run, then re-raised for the caller's log
            run.error = run.error or f"{type(exc).__name__}: {exc}"
            self.finish()
            raise
        return self.finish()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def start(self, scope: str = "") -> SyncRun:
        self._requests_at_start = self.client.stats.total
        self._kinds_at_start = self.client.stats.snapshot()
        self.run_record = SyncRun.objects.create(trigger=self.trigger, scope=scope)
        return self.run_record

    def finish(self) -> SyncRun:
        run = self.run_record
        assert run is not None
        if self.stopped and not run.error:
            run.error = "Interrupted before the end; nothing was removed."
        run.finished_at = timezone.now()
        run.repositories_failed = self.progress.repositories_failed
        run.repositories_seen = self.progress.repositories_total
        run.tags_seen = self.progress.tags_seen
        run.manifests_fetched = self.progress.manifests_fetched
        run.requests_made = self.client.stats.total - self._requests_at_start
        now_kinds = self.client.stats.snapshot()
        run.requests_by_kind = {
            kind: count - self._kinds_at_start.get(kind, 0)
            for kind, count in sorted(now_kinds.items())
            if count - self._kinds_at_start.get(kind, 0)
        }
        failed = bool(run.error) or run.repositories_failed > 0
        run.status = SyncRun.Status.FAILED if failed else SyncRun.Status.SUCCEEDED
        run.save()
        return run

    # -- steps ------------------------------------------------------------------------------

    def list_catalog(self) -> list[str]:
        """Every repository name, page by page. A failure part-way keeps what was listed,
        records the error and leaves ``catalog_complete`` false, so nothing gets removed."""
        names: list[str] = []
        try:
            for page in self.client.iter_catalog(self.page_size):
                names.extend(page)
                if self.stopped:
                    return names
        except RegistryError as exc:
            assert self.run_record is not None
            self.run_record.error = f"Listing the catalog failed after {len(names)} names: {exc}"
            SyncRunError.objects.create(
                run=self.run_record, repository="", code=exc.code, message=str(exc)
            )
            log.warning("catalog listing failed: %s", exc)
            return names
        self.progress.catalog_complete = True
        return names

    def sync_repositories(self, names: Iterable[str], *, single: bool = False) -> None:
        names = list(dict.fromkeys(names))
        self.progress.repositories_total = len(names)
        known = set(Manifest.objects.values_list("digest", flat=True).iterator(chunk_size=5000))
        fetcher = ManifestFetcher(self.client, known)
        first_seen = set(names) - self._existing_names(names)
        with (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="sync-req") as requests_pool,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="sync-repo") as repo_pool,
        ):
            pending: set[Future] = set()
            queue = iter(names)

            def submit_more() -> None:
                # Keep a bounded number of repositories in flight so memory stays flat on
                # catalogs of any size and a stop request takes effect quickly.
                while len(pending) < self.concurrency * 2 and not self.stopped:
                    name = next(queue, None)
                    if name is None:
                        return
                    pending.add(
                        repo_pool.submit(self.fetch_repository, name, fetcher, requests_pool)
                    )

            submit_more()
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    if future.cancelled():
                        continue
                    snapshot = future.result()
                    if snapshot.error is not None and snapshot.error.code == "INTERRUPTED":
                        continue  # stopped part-way: its rows stay as they were
                    self.store_snapshot(
                        snapshot, first_import=snapshot.name in first_seen, single=single
                    )
                    self.progress.manifests_fetched = fetcher.fetched
                    self.progress.requests = self.client.stats.total - self._requests_at_start
                    self.on_progress(self.progress)
                if self.stopped:
                    for future in pending:
                        future.cancel()
                submit_more()

    def fetch_repository(
        self, name: str, fetcher: ManifestFetcher, pool: ThreadPoolExecutor
    ) -> RepositorySnapshot:
        """Everything the registry says about one repository (HTTP only, no database)."""
        snapshot = RepositorySnapshot(name=name)
        try:
            try:
                tags = self.client.list_tags(name)
            except RegistryError as exc:
                if exc.code == "NAME_UNKNOWN" and exc.status == 404:
                    snapshot.missing = True
                    return snapshot
                raise
            heads = list(pool.map(lambda tag: self._head(name, tag), tags))
            snapshot.tags = {tag: digest for tag, digest in zip(tags, heads) if digest}
            digests = sorted(set(snapshot.tags.values()))
            for fetched_list in pool.map(lambda d: fetcher.ensure(name, d), digests):
                for fetched in fetched_list:
                    snapshot.manifests[fetched.digest] = fetched
        except RegistryError as exc:
            snapshot.error = exc
        return snapshot

    def _head(self, name: str, tag: str) -> str | None:
        if self.stopped:
            raise RegistryError("The sync was interrupted.", code="INTERRUPTED")
        try:
            return self.client.head_manifest(name, tag).digest
        except RegistryError as exc:
            # The tag was deleted between the listing and the HEAD: the registry's 404 with
            # MANIFEST_UNKNOWN is authoritative. Any other failure fails the repository.
            if exc.status == 404 and exc.code == "MANIFEST_UNKNOWN":
                return None
            raise

    def store_snapshot(
        self, snapshot: RepositorySnapshot, *, first_import: bool = False, single: bool = False
    ) -> None:
        assert self.run_record is not None
        now = timezone.now()
        self.progress.repositories_done += 1
        if snapshot.error is not None:
            self.progress.repositories_failed += 1
            message = str(snapshot.error)
            SyncRunError.objects.create(
                run=self.run_record, repository=snapshot.name, code=snapshot.error.code,
                message=message,
            )
            Repository.objects.filter(name=snapshot.name).update(
                last_sync_error=message, last_sync_error_at=now
            )
            log.warning("sync of %s failed: %s", snapshot.name, message)
            return
        if snapshot.missing and single:
            removed, _ = Repository.objects.filter(name=snapshot.name).delete()
            self.run_record.repositories_removed += 1 if removed else 0
            return
        self.progress.tags_seen += len(snapshot.tags)
        with transaction.atomic():
            ids = store_manifests(snapshot.manifests.values())
            missing = set(snapshot.tags.values()) - ids.keys()
            if missing:
                ids.update(manifest_ids(missing))
            repository, created = Repository.objects.get_or_create(name=snapshot.name)
            changes = replace_tags(
                repository, snapshot.tags, ids, first_import=first_import or created, now=now
            )
            repository.last_synced_at = now
            repository.last_sync_error = ""
            repository.save(update_fields=["last_synced_at", "last_sync_error", "namespace"])
            if changes.any or created:
                repository.refresh_stats()
        run = self.run_record
        run.repositories_synced += 1
        run.tags_added += changes.added
        run.tags_updated += changes.updated
        run.tags_removed += changes.removed

    def remove_missing(self, names: list[str]) -> int:
        """Drop repositories the (completely listed) catalog no longer has."""
        listed = set(names)
        gone = [
            pk for pk, name in Repository.objects.values_list("id", "name") if name not in listed
        ]
        for chunk in chunked(gone):
            Repository.objects.filter(id__in=chunk).delete()
        assert self.run_record is not None
        self.run_record.repositories_removed += len(gone)
        return len(gone)

    @staticmethod
    def _existing_names(names: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(names):
            found.update(Repository.objects.filter(name__in=chunk).values_list("name", flat=True))
        return found
