"""The full sync: mirror the registry's catalog, tags and manifests into the database.

Steps: list the catalog (following ``Link``) → list each repository's tags → one HEAD per tag
for its digest → GET the manifest and config only for digests not stored yet → write each
repository's tags in one short transaction → drop repositories the catalog no longer lists.

Every request runs on one pool of ``SYNC_CONCURRENCY`` threads, so the registry never sees more
requests at once than that. The calling thread never waits on a single request: it hands out
the next step of a repository when the previous one answers (tags listed → HEADs → manifests),
keeps a bounded window of repositories in flight, and is the only thread that touches the
database, one repository at a time. SQLite and PostgreSQL behave the same, and a failure in one
repository leaves its previous rows untouched.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registryui.lib.iters import chunked
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.client import MAX_CATALOG_PAGE

from .manifests import FetchedManifest, ManifestFormatError, apply_config, parse_manifest
from .models import Manifest, Repository, SyncRun, SyncRunError, Tag
from .store import manifest_ids, replace_tags, store_manifests

log = logging.getLogger(__name__)

#: Unchanged repositories get their ``last_synced_at`` in one UPDATE per this many names.
TOUCH_BATCH = 500


def _interrupted() -> RegistryError:
    return RegistryError("The sync was interrupted.", code="INTERRUPTED")


@dataclass
class RepositorySnapshot:
    """What the registry said about one repository; built by the workers, stored by the caller."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, FetchedManifest] = field(default_factory=dict)
    #: The registry says the repository does not exist (404 ``NAME_UNKNOWN`` on its tag list).
    missing: bool = False
    error: RegistryError | None = None
    #: When the registry was first asked (its tags list): what the snapshot shows is from then on.
    observed_at: datetime = field(default_factory=timezone.now)


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

    def stored(self, digests: Iterable[str]) -> None:
        """These manifests are in the database now: nobody needs to fetch them again."""
        with self._lock:
            for digest in digests:
                self.known.add(digest)
                self._inflight.pop(digest, None)

    def _fetch_tree(self, repository: str, digest: str) -> list[FetchedManifest]:
        if self.should_stop():
            raise _interrupted()
        ref, raw = self.client.get_manifest(repository, digest)
        try:
            fetched = parse_manifest(digest, ref.media_type, raw)
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
            apply_config(fetched, self.client.get_blob(repository, fetched.config_digest))
        # Children are fetched by this same worker: the request pool stays bounded, and a
        # worker never waits on work that is queued behind it.
        for child in fetched.children:
            result.extend(self.ensure(repository, child.digest))
        result.append(fetched)  # children first, as store_manifests needs them
        return result


@contextlib.contextmanager
def stop_on_signals(
    event: threading.Event, signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """SIGTERM or Ctrl-C asks the sync to stop cleanly (nothing is removed, the run is
    recorded); a second Ctrl-C interrupts at once. Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        event.set()

    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


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
        self.concurrency = max(concurrency or settings.SYNC_CONCURRENCY, 1)
        self.page_size = min(max(page_size or settings.SYNC_CATALOG_PAGE_SIZE, 1), MAX_CATALOG_PAGE)
        self.trigger = trigger
        self.stop_event = stop_event or threading.Event()
        self.on_progress = on_progress or (lambda progress: None)
        self.progress = Progress()
        self.run_record: SyncRun | None = None
        self.fetcher: ManifestFetcher | None = None
        #: Set when the registry stopped answering: the rest of the run is skipped.
        self.abort_error: RegistryError | None = None
        self._requests_at_start = 0
        self._kinds_at_start: dict[str, int] = {}
        self._touched: list[str] = []
        # One connection per worker, or urllib3 would open and drop connections under load.
        client.ensure_pool_size(self.concurrency)

    # -- the whole run ----------------------------------------------------------------------

    def run(self, repository: str | None = None) -> SyncRun:
        run = self.start(scope=repository or "")
        try:
            if repository:
                self.sync_repositories([repository], single=True)
            else:
                names = self.list_catalog()
                self.sync_repositories(names)
                if self.progress.catalog_complete and not self.halted:
                    self.remove_missing(names)
        except BaseException as exc:  # recorded on the run, then re-raised for the caller
            run.error = run.error or f"{type(exc).__name__}: {exc}".rstrip(": ")
            self.finish()
            raise
        return self.finish()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    @property
    def halted(self) -> bool:
        """Stopped on request, or aborted because the registry went away: start nothing new."""
        return self.stopped or self.abort_error is not None

    def start(self, scope: str = "") -> SyncRun:
        self._requests_at_start = self.client.stats.total
        self._kinds_at_start = self.client.stats.snapshot()
        self.progress = Progress()
        self.abort_error = None
        self._touched.clear()
        self.run_record = SyncRun.objects.create(trigger=self.trigger, scope=scope)
        return self.run_record

    def finish(self) -> SyncRun:
        run = self.run_record
        assert run is not None
        progress = self.progress
        if self.abort_error is not None and not run.error:
            skipped = progress.repositories_total - progress.repositories_done
            run.error = (
                f"The registry stopped answering ({self.abort_error}); {skipped} repositories "
                "were not synced and nothing was removed."
            )
        elif self.stopped and not run.error:
            run.error = "Interrupted before the end; nothing was removed."
        run.finished_at = timezone.now()
        run.repositories_failed = progress.repositories_failed
        run.repositories_seen = progress.repositories_total
        run.tags_seen = progress.tags_seen
        run.manifests_fetched = progress.manifests_fetched
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
        self.fetcher = ManifestFetcher(self.client, known, should_stop=lambda: self.halted)
        first_seen = set(names) - self._existing_names(names)

        def done(snapshot: RepositorySnapshot) -> None:
            if snapshot.error is not None and snapshot.error.code == "INTERRUPTED":
                return  # stopped part-way: its rows stay as they were
            if snapshot.error is not None and snapshot.error.code == "UNREACHABLE":
                # Retries are spent and the registry still refuses connections: it is down,
                # and every other repository would fail the same way after its own retries.
                self.abort_error = self.abort_error or snapshot.error
            self.store_snapshot(snapshot, first_import=snapshot.name in first_seen, single=single)
            self.report_progress()

        try:
            _Pipeline(self, self.fetcher).run(names, done)
        except BaseException:
            with contextlib.suppress(Exception):
                self.flush_touched()
            raise
        self.flush_touched()
        self.report_progress()

    def report_progress(self) -> None:
        if self.fetcher is not None:
            self.progress.manifests_fetched = self.fetcher.fetched
        self.progress.requests = self.client.stats.total - self._requests_at_start
        self.on_progress(self.progress)

    def head_tag(self, name: str, tag: str) -> tuple[str, str | None]:
        """(tag, digest), or (tag, None) when the tag vanished since the listing."""
        try:
            return tag, self.client.head_manifest(name, tag).digest
        except RegistryError as exc:
            # The tag was deleted between the listing and the HEAD: the registry's 404 with
            # MANIFEST_UNKNOWN is authoritative. Any other failure (a timeout, a 5xx) fails
            # the repository: a tag we could not read is not a tag that is gone.
            if exc.status == 404 and exc.code == "MANIFEST_UNKNOWN":
                return tag, None
            raise

    def store_snapshot(
        self, snapshot: RepositorySnapshot, *, first_import: bool = False, single: bool = False
    ) -> None:
        run = self.run_record
        assert run is not None
        now = timezone.now()
        self.progress.repositories_done += 1
        if snapshot.error is not None:
            self.progress.repositories_failed += 1
            message = str(snapshot.error)
            SyncRunError.objects.create(
                run=run, repository=snapshot.name, code=snapshot.error.code, message=message
            )
            Repository.objects.filter(name=snapshot.name).update(
                last_sync_error=message, last_sync_error_at=now
            )
            log.warning("sync of %s failed: %s", snapshot.name, message)
            return
        if snapshot.missing and single:
            # As in remove_missing: a repository that a notification or a cleanup action
            # created or changed after the registry said "unknown" is not gone.
            removed, _ = (
                Repository.objects.filter(
                    name=snapshot.name, first_seen_at__lt=snapshot.observed_at
                )
                .exclude(tags_changed_live_at__gte=snapshot.observed_at)
                .delete()
            )
            run.repositories_removed += 1 if removed else 0
            return
        self.progress.tags_seen += len(snapshot.tags)
        if not first_import and not snapshot.manifests and self._unchanged(snapshot):
            # The common case of a re-sync: no transaction, one batched UPDATE later.
            run.repositories_synced += 1
            self._touched.append(snapshot.name)
            if len(self._touched) >= TOUCH_BATCH:
                self.flush_touched()
            return
        changes = None
        with transaction.atomic():
            ids = store_manifests(snapshot.manifests.values())
            missing = set(snapshot.tags.values()) - ids.keys()
            if missing:
                ids.update(manifest_ids(missing))
            repository, created = Repository.objects.get_or_create(name=snapshot.name)
            live = repository.tags_changed_live_at
            if live is None or live < snapshot.observed_at:
                changes = replace_tags(
                    repository, snapshot.tags, ids, first_import=first_import or created, now=now
                )
                repository.last_synced_at = now
                repository.last_sync_error = ""
                repository.save(update_fields=["last_synced_at", "last_sync_error", "namespace"])
                if changes.any or created:
                    repository.refresh_stats()
        if self.fetcher is not None:
            self.fetcher.stored(snapshot.manifests)
        if changes is None:
            # A notification or a cleanup action changed these tags after we asked the
            # registry: this snapshot is older than the database, so it is not applied. The
            # next sync sees the newer state.
            log.info("sync of %s skipped: its tags changed while it was read", snapshot.name)
            return
        run.repositories_synced += 1
        run.tags_added += changes.added
        run.tags_updated += changes.updated
        run.tags_removed += changes.removed

    def flush_touched(self) -> None:
        """Mark the unchanged repositories seen so far as synced, in one UPDATE per batch."""
        if not self._touched:
            return
        now = timezone.now()
        for chunk in chunked(self._touched):
            Repository.objects.filter(name__in=chunk).update(last_synced_at=now, last_sync_error="")
        self._touched.clear()

    def remove_missing(self, names: list[str]) -> int:
        """Drop repositories the (completely listed) catalog no longer has."""
        listed = set(names)
        assert self.run_record is not None
        started = self.run_record.started_at
        # A repository that appeared or changed through a notification since the catalog was
        # listed is not "gone": the catalog simply predates it.
        gone = [
            pk
            for pk, name, first_seen, live in Repository.objects.values_list(
                "id", "name", "first_seen_at", "tags_changed_live_at"
            )
            if name not in listed and first_seen < started and (live is None or live < started)
        ]
        for chunk in chunked(gone):
            Repository.objects.filter(id__in=chunk).delete()
        self.run_record.repositories_removed += len(gone)
        return len(gone)

    @staticmethod
    def _unchanged(snapshot: RepositorySnapshot) -> bool:
        current = dict(
            Tag.objects.filter(repository__name=snapshot.name).values_list(
                "name", "manifest__digest"
            )
        )
        return current == snapshot.tags

    @staticmethod
    def _existing_names(names: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(names):
            found.update(Repository.objects.filter(name__in=chunk).values_list("name", flat=True))
        return found


class _Job:
    """One repository on its way through the pipeline."""

    __slots__ = ("pending", "snapshot")

    def __init__(self, name: str) -> None:
        self.snapshot = RepositorySnapshot(name=name)
        self.pending = 0


_Handler = Callable[[_Job, Future], bool]


class _Pipeline:
    """Runs the requests of many repositories on one bounded pool.

    Workers only make requests. Each finished request comes back to the calling thread through
    a queue, where a handler records the answer and submits the repository's next requests;
    a handler returns True when its repository is complete and ready to be stored.
    """

    def __init__(self, syncer: Syncer, fetcher: ManifestFetcher) -> None:
        self.syncer = syncer
        self.client = syncer.client
        self.fetcher = fetcher
        self.events: queue.SimpleQueue[tuple[_Handler, _Job, Future]] = queue.SimpleQueue()
        # Enough repositories in flight that the workers always have queued requests while
        # the calling thread writes to the database; bounded so memory stays flat.
        self.window = max(4 * syncer.concurrency, 16)

    def run(self, names: list[str], done: Callable[[RepositorySnapshot], None]) -> None:
        pending_names = iter(names)
        active = 0
        self.pool = ThreadPoolExecutor(self.syncer.concurrency, thread_name_prefix="sync")
        try:
            while True:
                while active < self.window and not self.syncer.halted:
                    name = next(pending_names, None)
                    if name is None:
                        break
                    active += 1
                    self._submit(self._tags_listed, _Job(name), self.client.list_tags, name)
                if not active:
                    return
                try:
                    handler, job, future = self.events.get(timeout=0.5)
                except queue.Empty:
                    self.syncer.report_progress()  # a big repository is still on its way
                    continue
                if handler(job, future):
                    active -= 1
                    done(job.snapshot)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, handler: _Handler, job: _Job, fn: Callable[..., Any], *args: Any) -> None:
        syncer = self.syncer

        def task() -> Any:
            if syncer.halted:
                raise _interrupted()
            if job.snapshot.error is not None:
                # The repository failed already: its remaining requests would be wasted.
                raise RegistryError("Skipped after an earlier error.", code="SKIPPED")
            return fn(*args)

        future = self.pool.submit(task)
        future.add_done_callback(lambda f: self.events.put((handler, job, f)))

    @staticmethod
    def _outcome(future: Future) -> tuple[Any, RegistryError | None]:
        """The task's result or its RegistryError; anything else is a bug and propagates."""
        if future.cancelled():
            return None, _interrupted()
        error = future.exception()
        if error is None:
            return future.result(), None
        if isinstance(error, RegistryError):
            return None, error
        raise error

    def _tags_listed(self, job: _Job, future: Future) -> bool:
        tags, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            if error.code == "NAME_UNKNOWN" and error.status == 404:
                snapshot.missing = True  # no tags at all (only untagged manifests, or gone)
            else:
                snapshot.error = error
            return True
        job.pending = len(tags)
        for tag in tags:
            self._submit(self._tag_resolved, job, self.syncer.head_tag, snapshot.name, tag)
        return not tags

    def _tag_resolved(self, job: _Job, future: Future) -> bool:
        job.pending -= 1
        result, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            snapshot.error = snapshot.error or error
        else:
            tag, digest = result
            if digest:
                snapshot.tags[tag] = digest
        if job.pending:
            return False
        if snapshot.error is not None:
            return True
        wanted = sorted({d for d in snapshot.tags.values() if d not in self.fetcher.known})
        job.pending = len(wanted)
        for digest in wanted:
            self._submit(self._manifests_fetched, job, self.fetcher.ensure, snapshot.name, digest)
        return not wanted

    def _manifests_fetched(self, job: _Job, future: Future) -> bool:
        job.pending -= 1
        fetched, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            snapshot.error = snapshot.error or error
        else:
            for manifest in fetched:
                snapshot.manifests[manifest.digest] = manifest
        return job.pending == 0
