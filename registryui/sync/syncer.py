"""The full sync: mirror the registry's catalog, tags and manifests into the database.

Steps: list the catalog (following ``Link``) → list each repository's tags → for a tag the
database knows, one HEAD for its digest, and a GET by tag, checked against its bytes, only when
the digest changed; for a tag it has never seen, the GET by tag alone (its digest header is
checked against its bytes) → the config and index children of digests not stored yet → write
each repository's tags in one short transaction (a savepoint: a repository whose rows cannot be
written fails alone) → check the repositories the catalog no longer lists one by one, and drop
those the registry says are gone.

Nothing is removed on one answer's word. A tag we know that is missing from its list is removed
only when a HEAD answers 404 for it (so ``tags: null`` from a faulty proxy removes nothing), and
a repository missing from the catalog only when its own tag list answers ``NAME_UNKNOWN`` or
holds no tag (with the same HEAD check for the tags we knew). A tag that cannot be read (a
missing config blob, an index with a missing child, a 500, a digest header that disagrees with
the bytes, a schema 1 manifest) keeps its row with a visible reason (``Tag.sync_problem``) while
the other tags of its repository sync; the next run tries it again.

A failed request after the client's retries fails its tag or repository, not the run. The run
stops only after a sustained outage: several failures in a row, then a registry that still does
not answer ``GET /v2/`` for ``OUTAGE_SECONDS``; the run's error says how long it lasted.

Every request runs on one pool of ``SYNC_CONCURRENCY`` threads, so the registry never sees more
requests at once than that. The calling thread never waits on a single request: it hands out
the next step of a repository when the previous one answers (tags listed → HEADs → manifests),
keeps a bounded window of repositories in flight, and is the only thread that touches the
database, one repository at a time. SQLite and PostgreSQL behave the same, and a failure in one
repository leaves its previous rows untouched.
"""

from __future__ import annotations

import contextlib
import functools
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
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from registryui.catalog.fetch import ManifestFetcher, _interrupted
from registryui.catalog.manifests import (
    FetchedManifest,
)
from registryui.catalog.models import Manifest, Repository, SyncRun, SyncRunError, Tag
from registryui.catalog.storage import link_blobs, record_snapshot, wanted_from_fetched
from registryui.catalog.store import manifest_ids, replace_tags, store_manifests
from registryui.lib.iters import chunked
from registryui.lib.reference import is_valid_name, is_valid_tag, short_digest
from registryui.lib.untrusted import text
from registryui.registry import RegistryClient, RegistryError, mediatypes
from registryui.registry.client import MAX_CATALOG_PAGE, ManifestRef
from registryui.registry.ratelimit import shared_bucket

from . import referrers

log = logging.getLogger(__name__)

#: Unchanged repositories get their ``last_synced_at`` in one UPDATE per this many names.
TOUCH_BATCH = 500
#: Problem tags recorded as SyncRunError rows per repository and run (the rest are counted).
PROBLEMS_RECORDED = 20


@dataclass
class RepositorySnapshot:
    """What the registry said about one repository; built by the workers, stored by the caller."""

    name: str
    #: Tags the registry confirmed: listed (or known and answering a HEAD) and readable.
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, FetchedManifest] = field(default_factory=dict)
    #: Tags that exist (or may) but could not be read, and why. Their rows are kept.
    problems: dict[str, RegistryError] = field(default_factory=dict)
    #: The registry says the repository does not exist (404 ``NAME_UNKNOWN`` on its tag list).
    missing: bool = False
    #: The catalog did not list it: it is removed if the registry confirms it is gone.
    unlisted: bool = False
    error: RegistryError | None = None
    #: When the registry was first asked (its tags list): what the snapshot shows is from then on.
    observed_at: datetime = field(default_factory=timezone.now)
    #: The tags the database held when the registry was asked (name → digest), and whether any
    #: of them carried a sync problem; None when not read (tests building snapshots by hand).
    known: dict[str, str] | None = None
    known_problems: bool = False


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


class OutageWatch:
    """Tells a sustained outage from a few failed requests.

    Every answer (an error such as a 404 included) ends a streak; a transient failure (no
    answer, a timeout, a 5xx after the client's retries) extends it. After ``FAILURES`` in a
    row the sync holds: it starts no new repository and asks ``GET /v2/`` about once a second,
    carrying on as soon as it answers, and giving up once the streak has lasted ``seconds``.
    """

    FAILURES = 5

    def __init__(self, client: RegistryClient, seconds: float) -> None:
        self.client = client
        self.seconds = seconds
        self.streak = 0
        self.since: float | None = None
        self.last_error: RegistryError | None = None

    def observe(self, error: RegistryError | None) -> None:
        if error is not None and error.code in ("INTERRUPTED", "SKIPPED"):
            return  # not a request that reached the registry
        if error is None or not error.transient:
            self.streak, self.since = 0, None  # an answer, even an error or a bad one
            return
        self.streak += 1
        self.last_error = error
        if self.since is None:
            self.since = time.monotonic()

    @property
    def suspect(self) -> bool:
        return self.streak >= self.FAILURES

    @property
    def lasted(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def wait_out(self, should_stop: Callable[[], bool]) -> RegistryError | None:
        """Probe until the registry answers (None) or the outage lasted too long (an error)."""
        while not should_stop():
            try:
                self.client.ping()
            except RegistryError as exc:
                if not exc.transient:
                    break  # it answered (401, 404...): the registry is there
                self.last_error = exc
            else:
                break
            if self.lasted >= self.seconds:
                return RegistryError(
                    f"The registry stopped answering for {self.lasted:.0f} s "
                    f"({self.streak} requests in a row failed, then GET /v2/ kept failing; "
                    f"last: {self.last_error})",
                    code="OUTAGE",
                )
            time.sleep(min(1.0, max(self.seconds - self.lasted, 0.05)))
        self.streak, self.since = 0, None
        return None


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

    #: How long the registry may fail every request before the run stops (see OutageWatch).
    OUTAGE_SECONDS = 20.0

    def __init__(
        self,
        client: RegistryClient,
        *,
        concurrency: int | None = None,
        page_size: int | None = None,
        trigger: str = "command",
        stop_event: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        outage_seconds: float | None = None,
        max_rps: float | None = None,
    ) -> None:
        self.client = client
        #: Requests a second to the registry, shared by every thread of every sync of this
        #: process (``SYNC_MAX_RPS``; 0 = unlimited). Installed on the client.
        self.max_rps = settings.SYNC_MAX_RPS if max_rps is None else max_rps
        client.throttle = shared_bucket(self.max_rps) if self.max_rps > 0 else None
        self.outage_seconds = self.OUTAGE_SECONDS if outage_seconds is None else outage_seconds
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
        #: Repositories the database did not hold when this run listed them.
        self._first_seen: set[str] = set()
        # One connection per worker, or urllib3 would open and drop connections under load.
        client.ensure_pool_size(self.concurrency)

    # -- the whole run ----------------------------------------------------------------------

    def run(self, repository: str | None = None) -> SyncRun:
        run = self.start(scope=repository or "")
        try:
            if repository:
                self.sync_repositories([repository], single=True)
            else:
                names = self.skip_invalid(self.list_catalog())
                # Only a completely listed catalog says which repositories it left out.
                unlisted = self.unlisted(names) if self.progress.catalog_complete else []
                self.sync_repositories(names, unlisted=unlisted)
                self.scan_referrers(names)
        except BaseException as exc:  # recorded on the run, then re-raised for the caller
            run.error = run.error or f"{type(exc).__name__}: {exc}".rstrip(": ")
            self.finish()
            raise
        return self.finish()

    def scan_referrers(self, names: list[str]) -> None:
        """Referrers pushed by digest only, where the registry answers the referrers API."""
        if self.halted or self.fetcher is None or self.run_record is None:
            return
        state = referrers.scan(self.client, self.fetcher, names, lambda: self.halted)
        self.run_record.referrers_api = state

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
            if self.abort_error.code == "OUTAGE":
                reason = self.abort_error.message.removeprefix("The registry stopped answering")
            else:
                reason = f" ({self.abort_error})"
            run.error = (
                f"The registry stopped answering{reason}; {skipped} repositories "
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
        if not run.scope:
            self.snapshot_storage()
        return run

    def snapshot_storage(self) -> None:
        """The storage page's growth over time: one snapshot per full sync (changed figures
        only). A failure here is logged and leaves the run's outcome as it was."""
        try:
            with transaction.atomic():
                record_snapshot(self.run_record.finished_at if self.run_record else None)
        except DatabaseError:
            log.exception("the storage snapshot of this sync could not be written")

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

    def skip_invalid(self, names: list[str]) -> list[str]:
        """The catalog's names that follow the grammar; any other is recorded and skipped
        (a name from the registry's storage is untrusted too, and too long for our columns)."""
        valid = [name for name in names if is_valid_name(name)]
        if len(valid) < len(names):
            assert self.run_record is not None
            for name in (name for name in names if not is_valid_name(name)):
                self.progress.repositories_failed += 1
                SyncRunError.objects.create(
                    run=self.run_record,
                    repository=text(name)[:255],
                    code="NAME_INVALID",
                    message="The catalog lists this name, which is not a valid repository "
                    "name; it is skipped.",
                )
        return valid

    def sync_repositories(
        self, names: Iterable[str], *, single: bool = False, unlisted: Iterable[str] = ()
    ) -> None:
        """Sync ``names``, then check ``unlisted`` (known here, left out by the catalog) one
        by one: each is synced if the registry still has it, removed if it confirms it is gone."""
        names = list(dict.fromkeys(names))
        listed = set(names)
        unlisted = [name for name in dict.fromkeys(unlisted) if name not in listed]
        self.progress.repositories_total = len(names) + len(unlisted)
        known = set(Manifest.objects.values_list("digest", flat=True).iterator(chunk_size=5000))
        self.fetcher = ManifestFetcher(self.client, known, should_stop=lambda: self.halted)
        first_seen = set(names) - self._existing_names(names)
        self._first_seen = first_seen

        def done(snapshot: RepositorySnapshot) -> None:
            if snapshot.error is not None and snapshot.error.code == "INTERRUPTED":
                return  # stopped part-way: its rows stay as they were
            self.store_snapshot(snapshot, first_import=snapshot.name in first_seen, single=single)
            self.report_progress()

        try:
            with relaxed_commits():
                _Pipeline(self, self.fetcher, single=single).run(
                    [(name, False) for name in names] + [(name, True) for name in unlisted], done
                )
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

    def head_tag(self, name: str, tag: str) -> str | None:
        """The tag's digest, or None when the registry answers 404: the tag is gone (deleted
        since the listing, or a known tag the listing left out). Any other failure is raised:
        a tag we could not read is not a tag that is gone."""
        try:
            return self.client.head_manifest(name, tag).digest
        except RegistryError as exc:
            if tag_gone(exc):
                return None
            raise

    def fetch_new_tag(self, name: str, tag: str) -> tuple[str, list[FetchedManifest]] | None:
        """GET a tag the database has never seen, without a HEAD first: its digest (the
        ``Docker-Content-Digest`` the client checks against the bytes) and the parts of its
        image not stored yet; None when the registry answers 404 (deleted since the listing)."""
        try:
            ref, body = self.client.get_manifest(name, tag)
        except RegistryError as exc:
            if tag_gone(exc):
                return None
            raise
        return ref.digest, self._fetched(name, ref, body)

    def fetch_tag(self, name: str, tag: str, digest: str) -> list[FetchedManifest]:
        """GET a known tag whose HEAD named a digest it did not have, and the parts of its image
        not stored yet.

        The client checks the body against the digest it came with; here it must also be the
        digest the HEAD named, or one of the two answers was about another image."""
        ref, body = self.client.get_manifest(name, tag)
        if ref.digest != digest:
            raise RegistryError(
                f"The registry named {short_digest(digest)} for this tag, then sent "
                f"{short_digest(ref.digest)} (a wrong header, or a push in between); neither "
                "is trusted, and the tag is read again next run.",
                code="DIGEST_MISMATCH",
            )
        return self._fetched(name, ref, body)

    def _fetched(self, name: str, ref: ManifestRef, body: bytes) -> list[FetchedManifest]:
        if ref.media_type in mediatypes.SCHEMA1_TYPES:
            raise RegistryError(
                "It is a Docker schema 1 manifest, a format this UI does not read.",
                code="UNSUPPORTED",
            )
        assert self.fetcher is not None
        return self.fetcher.ensure(name, ref.digest, raw=(ref.media_type, body))

    def known_tags(self, name: str) -> tuple[dict[str, str], bool]:
        """The database's tags of a repository (name → digest), and whether any has a
        sync problem; one query, made by the calling thread when the repository starts (none
        for a repository this run found missing from the database)."""
        known, problems = {}, False
        if name in self._first_seen:
            return known, problems
        for tag, digest, problem in Tag.objects.filter(repository__name=name).values_list(
            "name", "manifest__digest", "sync_problem"
        ):
            known[tag] = digest
            problems = problems or bool(problem)
        return known, problems

    def store_snapshot(
        self, snapshot: RepositorySnapshot, *, first_import: bool = False, single: bool = False
    ) -> None:
        run = self.run_record
        assert run is not None
        now = timezone.now()
        self.progress.repositories_done += 1
        if snapshot.error is not None:
            self._record_failure(snapshot.name, snapshot.error.code, str(snapshot.error), now)
            return
        gone = snapshot.missing and (single or snapshot.unlisted)
        if snapshot.unlisted and not snapshot.tags and not snapshot.problems:
            # Left out by the catalog, and its own tag list confirms it: no tag answers.
            gone = True
        if gone:
            # As for the catalog: a repository that a notification or a cleanup action
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
        self.progress.tags_seen += len(snapshot.tags) + len(snapshot.problems)
        if (
            not first_import
            and not snapshot.manifests
            and not snapshot.problems
            and self._unchanged(snapshot)
        ):
            # The common case of a re-sync: no transaction, one batched UPDATE later.
            run.repositories_synced += 1
            self._touched.append(snapshot.name)
            if len(self._touched) >= TOUCH_BATCH:
                self.flush_touched()
            return
        reasons = {tag: _reason(error) for tag, error in snapshot.problems.items()}
        problem_note = _problem_note(reasons)
        changes = None
        try:
            # A savepoint per repository: rows that the database still refuses (a bug past
            # the untrusted-input boundary, a value out of a column's range) undo this
            # repository's writes only, and the run goes on with the next one.
            with transaction.atomic():
                ids = store_manifests(snapshot.manifests.values())
                missing = set(snapshot.tags.values()) - ids.keys()
                if missing:
                    ids.update(manifest_ids(missing))
                repository, created = Repository.objects.get_or_create(name=snapshot.name)
                live = repository.tags_changed_live_at
                if live is None or live < snapshot.observed_at:
                    # A repository created just now: its stats come from what was fetched,
                    # when every image it holds was (no query for them).
                    stats = _new_repository_stats(snapshot, ids, now) if created else None
                    changes = replace_tags(
                        repository,
                        snapshot.tags,
                        ids,
                        first_import=first_import or created,
                        now=now,
                        problems=reasons,
                        created_times=stats.created_times if stats else None,
                        sizes=stats.sizes if stats else None,
                        subjects=stats.subjects if stats else None,
                        empty=created,
                    )
                    repository.last_synced_at = now
                    repository.last_sync_error = problem_note
                    fields = ["last_synced_at", "last_sync_error", "namespace"]
                    if problem_note:
                        repository.last_sync_error_at = now
                        fields.append("last_sync_error_at")
                    if stats is not None:
                        repository.tag_count = changes.added
                        # Its blob links for the storage page; their sum is its size.
                        tagged = set(snapshot.tags.values())
                        repository.size = link_blobs(
                            repository,
                            stats.created_times.keys(),
                            {ids[digest] for digest in tagged},
                            wanted=wanted_from_fetched(
                                (snapshot.manifests[d] for d in stats.live), tagged
                            ),
                            new=True,
                        )
                        repository.last_updated_at = stats.last_updated_at
                        fields += ["tag_count", "size", "last_updated_at"]
                    repository.save(update_fields=fields)
                    if stats is None and (changes.any or created):
                        repository.refresh_stats()
        except (DatabaseError, ValueError) as exc:
            log.exception("the rows of %s could not be written", snapshot.name)
            # The exception's text may quote what a pusher wrote: the log has it, the record
            # names the kind of failure only.
            self._record_failure(
                snapshot.name,
                "DATABASE",
                f"The database refused this repository's rows ({type(exc).__name__}); "
                "its previous rows are kept.",
                now,
            )
            return
        if self.fetcher is not None:
            self.fetcher.stored(snapshot.manifests)
        if changes is None:
            # A notification or a cleanup action changed these tags after we asked the
            # registry: this snapshot is older than the database, so it is not applied. The
            # next sync sees the newer state.
            log.info("sync of %s skipped: its tags changed while it was read", snapshot.name)
            return
        if snapshot.problems:
            # Its readable tags are synced; it still counts as failed, with each reason.
            run.repositories_failed += 1
            self.progress.repositories_failed += 1
            problems = sorted(snapshot.problems.items())
            SyncRunError.objects.bulk_create(
                SyncRunError(
                    run=run,
                    repository=snapshot.name,
                    code=error.code,
                    message=f"tag {tag}: {reasons[tag]}",
                )
                for tag, error in problems[:PROBLEMS_RECORDED]
            )
            log.warning("sync of %s: %s", snapshot.name, problem_note)
        else:
            run.repositories_synced += 1
        run.tags_added += changes.added
        run.tags_updated += changes.updated
        run.tags_removed += changes.removed

    def _record_failure(self, name: str, code: str, message: str, now: datetime) -> None:
        assert self.run_record is not None
        self.progress.repositories_failed += 1
        SyncRunError.objects.create(
            run=self.run_record, repository=name, code=code, message=message
        )
        Repository.objects.filter(name=name).update(last_sync_error=message, last_sync_error_at=now)
        log.warning("sync of %s failed: %s", name, message)

    def flush_touched(self) -> None:
        """Mark the unchanged repositories seen so far as synced, in one UPDATE per batch."""
        if not self._touched:
            return
        now = timezone.now()
        for chunk in chunked(self._touched):
            Repository.objects.filter(name__in=chunk).update(last_synced_at=now, last_sync_error="")
        self._touched.clear()

    def unlisted(self, names: list[str]) -> list[str]:
        """Repositories we know that the (completely listed) catalog left out: each is asked
        about directly before anything is removed (see store_snapshot)."""
        listed = set(names)
        assert self.run_record is not None
        started = self.run_record.started_at
        # A repository that appeared or changed through a notification since the catalog was
        # listed is not "gone": the catalog simply predates it.
        return [
            name
            for name, first_seen, live in Repository.objects.values_list(
                "name", "first_seen_at", "tags_changed_live_at"
            )
            if name not in listed and first_seen < started and (live is None or live < started)
        ]

    def _unchanged(self, snapshot: RepositorySnapshot) -> bool:
        if snapshot.known is None:
            snapshot.known, snapshot.known_problems = self.known_tags(snapshot.name)
        return not snapshot.known_problems and snapshot.known == snapshot.tags

    @staticmethod
    def _existing_names(names: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(names):
            found.update(Repository.objects.filter(name__in=chunk).values_list("name", flat=True))
        return found


@contextlib.contextmanager
def relaxed_commits() -> Iterator[None]:
    """On PostgreSQL, the sync's commits do not wait for their WAL to reach the disk.

    The sync commits once per repository; waiting for a disk flush each time was a large part
    of its database time on PostgreSQL. What it writes is a copy of the registry: a crash loses
    at most the last fraction of a second of commits (never consistency: PostgreSQL replays or
    drops whole transactions), and the next sync writes them again. Set for the connection
    (one statement, not one per transaction) and reset after the run."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


@dataclass
class _NewRepositoryStats:
    #: Every manifest the repository holds (tagged, and index children) → its build time.
    created_times: dict[int, datetime | None]
    last_updated_at: datetime | None
    #: The digests of those manifests.
    live: set[str]
    #: Manifest id → its pull size (``Tag.size``).
    sizes: dict[int, int]
    #: Manifest id → the digest its ``subject`` names, if any (``Tag.attached``).
    subjects: dict[int, str]


def _new_repository_stats(
    snapshot: RepositorySnapshot, ids: dict[str, int], now: datetime
) -> _NewRepositoryStats | None:
    """What ``Repository.refresh_stats`` and ``replace_tags`` would read back for a repository
    created in this transaction, from the manifests its snapshot fetched; None when one of its
    images was stored before (not fetched here): then they are read from the database.

    The same rules: a first import's tag changed at its image's build time (never later than
    now). Its size comes from ``catalog.storage.link_blobs`` over these manifests."""
    manifests = snapshot.manifests
    live: set[str] = set()
    pending = list(dict.fromkeys(snapshot.tags.values()))
    while pending:
        digest = pending.pop()
        if digest in live:
            continue
        fetched = manifests.get(digest)
        if fetched is None or digest not in ids:
            return None
        live.add(digest)
        pending.extend(child.digest for child in fetched.children)
    created_times = {ids[digest]: manifests[digest].created for digest in live}
    changed = [min(created_times[ids[digest]] or now, now) for digest in snapshot.tags.values()]
    return _NewRepositoryStats(
        created_times=created_times,
        last_updated_at=max(changed, default=None),
        live=live,
        sizes={ids[digest]: manifests[digest].total_size for digest in live},
        subjects={ids[digest]: manifests[digest].subject_digest for digest in live},
    )


def tag_gone(error: RegistryError) -> bool:
    """The registry says the tag is not there: a 404 with a not-found code. Only this answer
    removes a tag; anything else (a 404 from a proxy without the registry's code, a 500) means
    the tag could not be read, which is not the same."""
    return error.status == 404 and error.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def _problem_note(problems: dict[str, str]) -> str:
    """One line for the repository's page: which tags could not be read, and why."""
    if not problems:
        return ""
    items = sorted(problems.items())
    shown = "; ".join(f"{tag}: {reason}" for tag, reason in items[:5])
    more = f"; and {len(items) - 5} more" if len(items) > 5 else ""
    count = f"{len(items)} tag{'s' if len(items) != 1 else ''}"
    return f"{count} could not be read, kept as they were ({shown}{more})."[:2000]


def _reason(error: RegistryError) -> str:
    text = str(error)
    if error.status and error.status >= 500 and f"HTTP {error.status}" not in text:
        text += f" (HTTP {error.status})"
    return text[:500]


class _Job:
    """One repository on its way through the pipeline."""

    __slots__ = ("pending", "snapshot")

    def __init__(self, name: str, unlisted: bool) -> None:
        self.snapshot = RepositorySnapshot(name=name, unlisted=unlisted)
        self.pending = 0


_Handler = Callable[[_Job, Future], bool]


class _Pipeline:
    """Runs the requests of many repositories on one bounded pool.

    Workers only make requests. Each finished request comes back to the calling thread through
    a queue, where a handler records the answer and submits the repository's next requests;
    a repository is complete, and ready to be stored, when it has no request pending.
    """

    def __init__(self, syncer: Syncer, fetcher: ManifestFetcher, *, single: bool = False) -> None:
        self.syncer = syncer
        self.client = syncer.client
        self.fetcher = fetcher
        self.single = single
        self.watch = OutageWatch(syncer.client, syncer.outage_seconds)
        self.events: queue.SimpleQueue[tuple[_Handler, _Job, Future]] = queue.SimpleQueue()
        # Enough repositories in flight that the workers always have queued requests while
        # the calling thread writes to the database; bounded so memory stays flat.
        self.window = max(4 * syncer.concurrency, 16)

    def run(
        self, items: list[tuple[str, bool]], done: Callable[[RepositorySnapshot], None]
    ) -> None:
        """Sync each (name, unlisted) item; ``done`` gets each finished snapshot."""
        pending_items = iter(items)
        active = 0
        self.pool = ThreadPoolExecutor(self.syncer.concurrency, thread_name_prefix="sync")
        try:
            while True:
                if self.watch.suspect and not self.syncer.halted:
                    # Several requests in a row got no answer: hold, and find out whether
                    # the registry is gone or was only briefly away.
                    error = self.watch.wait_out(lambda: self.syncer.stopped)
                    if error is not None:
                        self.syncer.abort_error = error
                while active < self.window and not self.syncer.halted:
                    item = next(pending_items, None)
                    if item is None:
                        break
                    job = _Job(*item)
                    snapshot = job.snapshot
                    snapshot.known, snapshot.known_problems = self.syncer.known_tags(item[0])
                    active += 1
                    self._submit(self._tags_listed, job, self.client.list_tags, snapshot.name)
                if not active:
                    return
                try:
                    handler, job, future = self.events.get(timeout=0.5)
                except queue.Empty:
                    self.syncer.report_progress()  # a big repository is still on its way
                    continue
                job.pending -= 1
                handler(job, future)
                if not job.pending:
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

        job.pending += 1
        future = self.pool.submit(task)
        future.add_done_callback(lambda f: self.events.put((handler, job, f)))

    def _outcome(self, future: Future) -> tuple[Any, RegistryError | None]:
        """The task's result or its RegistryError; anything else is a bug and propagates."""
        if future.cancelled():
            return None, _interrupted()
        error = future.exception()
        if error is not None and not isinstance(error, RegistryError):
            raise error
        self.watch.observe(error)
        if error is None:
            return future.result(), None
        return None, error

    @staticmethod
    def _stopped(snapshot: RepositorySnapshot, error: RegistryError) -> bool:
        """The repository cannot complete (the run stops): its rows stay as they were."""
        if error.code in ("INTERRUPTED", "SKIPPED"):
            snapshot.error = snapshot.error or error
            return True
        return False

    def _tags_listed(self, job: _Job, future: Future) -> None:
        tags, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            if error.code == "NAME_UNKNOWN" and error.status == 404:
                snapshot.missing = True  # no tags at all (only untagged manifests, or gone)
                if self.single or snapshot.unlisted:
                    return  # its own tag list says it is gone: that is the direct check
                tags = []
            else:
                snapshot.error = error
                return
        # Every listed tag, and every tag we know that the list left out: for those, only a
        # HEAD answering 404 confirms that they are gone (a list can be wrong: "tags": null
        # from a faulty proxy).
        for tag in dict.fromkeys([*tags, *(snapshot.known or {})]):
            if not is_valid_tag(tag):
                snapshot.problems[text(tag)[:200]] = RegistryError(
                    "The registry lists this tag, whose name is not a valid tag.",
                    code="TAG_INVALID",
                )
                continue
            if snapshot.known is not None and tag not in snapshot.known:
                # A tag the database has never seen: its GET answers the digest too (checked
                # against the bytes), so a HEAD first would be one request too many.
                self._submit(
                    functools.partial(self._new_tag_fetched, tag=tag),
                    job,
                    self.syncer.fetch_new_tag,
                    snapshot.name,
                    tag,
                )
                continue
            self._submit(
                functools.partial(self._tag_resolved, tag=tag),
                job,
                self.syncer.head_tag,
                snapshot.name,
                tag,
            )

    def _tag_resolved(self, job: _Job, future: Future, *, tag: str) -> None:
        digest, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            if not self._stopped(snapshot, error):
                snapshot.problems[tag] = error
        elif digest is None:
            pass  # the registry answered 404: gone
        elif (snapshot.known or {}).get(tag) == digest:
            snapshot.tags[tag] = digest  # unchanged: the steady state, one HEAD per tag
        else:
            self._submit(
                functools.partial(self._tag_fetched, tag=tag, digest=digest),
                job,
                self.syncer.fetch_tag,
                snapshot.name,
                tag,
                digest,
            )

    def _tag_fetched(self, job: _Job, future: Future, *, tag: str, digest: str) -> None:
        fetched, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            if not self._stopped(snapshot, error):
                snapshot.problems[tag] = error
            return
        for manifest in fetched:
            snapshot.manifests[manifest.digest] = manifest
        snapshot.tags[tag] = digest

    def _new_tag_fetched(self, job: _Job, future: Future, *, tag: str) -> None:
        answer, error = self._outcome(future)
        snapshot = job.snapshot
        if error is not None:
            if not self._stopped(snapshot, error):
                snapshot.problems[tag] = error
            return
        if answer is None:
            return  # the registry answered 404: deleted since the listing
        digest, fetched = answer
        for manifest in fetched:
            snapshot.manifests[manifest.digest] = manifest
        snapshot.tags[tag] = digest
