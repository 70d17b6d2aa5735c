"""The sync worker: ``sync_registry --loop --interval SECONDS``, and the lock every sync holds.

Scheduling lives in the database, not in each process: a full sync is due when no full sync
started within the interval, or when a staff member asked for one ("sync now", a
``SyncRequest`` row). Every worker polls every few seconds; the one that gets the sync lock
checks again under the lock and syncs, the others keep waiting. So several workers together
still sync once per interval, and never two at a time.

SIGTERM and SIGINT stop the loop: a sync in progress is asked to stop (``Syncer`` checks its
``stop_event`` between requests), records its run as interrupted and removes nothing; then the
process exits with status 0. A second signal stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, connections
from django.db.models import Q
from django.utils import timezone

from registryui.catalog.models import SyncRun
from registryui.catalog.upstream import get_client
from registryui.events import pulls
from registryui.events.models import ProcessedEvent, SyncRequest, SyncWorker, TagClock
from registryui.sync.syncer import Syncer
from registryui.webhooks.delivery import Dispatcher

from .lock import SyncBusy, SyncLockHandle, held_by_a_live_holder

log = logging.getLogger(__name__)

#: How often a waiting worker looks for a due sync or a "sync now" request.
POLL_SECONDS = 2.0
#: How often a waiting worker writes its heartbeat.
HEARTBEAT_SECONDS = 10.0
#: Redeliveries of an event come within minutes; a week of ids is plenty to recognise them.
EVENT_RETENTION = timedelta(days=7)
REQUEST_RETENTION = timedelta(days=30)
#: Sync runs (and their per-repository errors) kept for the admin and the status page.
RUN_RETENTION = timedelta(days=30)

__all__ = ["SyncBusy", "Worker", "locked_run", "run_loop"]


#: The error of a run whose process died (``kill -9``, a crash, the machine lost): the schedule
#: does not count such a run, so the next worker syncs at once instead of an interval later.
ABANDONED = "Abandoned: the process running this sync stopped without finishing it."


def close_abandoned_runs() -> int:
    """Mark runs left "running" by a process that died as failed.

    Only called while holding the sync lock: no other sync can be running then, so a run still
    marked as running was abandoned.
    """
    return SyncRun.objects.filter(status=SyncRun.Status.RUNNING, finished_at__isnull=True).update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), error=ABANDONED
    )


def settle_requests(run: SyncRun) -> int:
    """A full sync answers every "sync now" made before it started."""
    return (
        SyncRequest.pending()
        .filter(requested_at__lte=run.started_at)
        .update(status=SyncRequest.Status.DONE, run=run, handled_at=timezone.now())
    )


def prune() -> None:
    """Forget old event ids, settled requests, long-stopped workers and pull history older than
    ``PULL_HISTORY_DAYS`` (bounded tables)."""
    now = timezone.now()
    ProcessedEvent.objects.filter(received_at__lt=now - EVENT_RETENTION).delete()
    # A week-old event that comes again finds the UI's own history newer (tags seen, syncs)
    # and is checked with the registry: the clocks need not outlive the event ids.
    TagClock.objects.filter(event_time__lt=now - EVENT_RETENTION).delete()
    SyncRequest.objects.filter(
        status=SyncRequest.Status.DONE, requested_at__lt=now - REQUEST_RETENTION
    ).delete()
    SyncWorker.objects.filter(
        Q(state=SyncWorker.State.STOPPED) | Q(last_seen_at__lt=now - EVENT_RETENTION),
        last_seen_at__lt=now - timedelta(days=1),
    ).delete()
    # The last successful full sync stays whatever its age: freshness banners are measured
    # from it, and a registry down for a month must still read "last synced 31 days ago".
    keep = (
        SyncRun.objects.filter(scope="", status=SyncRun.Status.SUCCEEDED)
        .order_by("-started_at")
        .values_list("pk", flat=True)[:1]
    )
    SyncRun.objects.filter(finished_at__lt=now - RUN_RETENTION).exclude(pk__in=list(keep)).delete()
    pulls.prune()


def close_dead_workers(holder: str = "") -> int:
    """Mark workers still shown as syncing, other than ``holder``, as stopped.

    Only called while holding the sync lock: a worker that was syncing has lost the lock, so
    it died (``kill -9``) and would otherwise be shown as syncing until its heartbeat ages
    out. A worker that is in fact alive corrects its row at its next heartbeat.
    """
    return (
        SyncWorker.objects.filter(state=SyncWorker.State.SYNCING)
        .exclude(name=holder)
        .update(state=SyncWorker.State.STOPPED)
    )


def _run_holding_lock(syncer: Syncer, repository: str | None, holder: str = "") -> SyncRun:
    close_abandoned_runs()
    close_dead_workers(holder)
    try:
        return syncer.run(repository=repository)
    finally:
        if not repository and syncer.run_record is not None:
            settle_requests(syncer.run_record)


def locked_run(
    syncer: Syncer, repository: str | None = None, *, purpose: str = "command"
) -> SyncRun:
    """Run ``syncer`` while holding the sync lock; ``SyncBusy`` when another sync holds it.

    The one-off ``sync_registry`` uses this. If the lock is lost part-way (its lease taken over
    after the database was unreachable for a minute), the sync is asked to stop.
    """
    with SyncLockHandle(purpose, on_lost=syncer.stop_event.set) as lock:
        if not lock.acquired:
            raise SyncBusy(lock.busy_message())
        return _run_holding_lock(syncer, repository)


class Worker:
    """The loop of ``sync_registry --loop``; ``step()`` is one iteration, for tests."""

    def __init__(
        self,
        *,
        interval: float,
        concurrency: int | None = None,
        page_size: int | None = None,
        write: Callable[[str], None] | None = None,
        poll: float = POLL_SECONDS,
        client_factory: Callable = get_client,
    ) -> None:
        if interval <= 0:
            raise ValueError("the interval must be positive")
        self.interval = interval
        self.concurrency = concurrency
        self.page_size = page_size
        self.write = write or (lambda line: log.info("%s", line))
        self.poll = min(poll, interval)
        self.client_factory = client_factory
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.stop_event = threading.Event()
        self._signal_name = ""
        self._run_stop: threading.Event | None = None
        self._last_beat = 0.0
        self._state = SyncWorker.State.IDLE

    # -- stopping ---------------------------------------------------------------------------

    def request_stop(self, reason: str = "") -> None:
        self._signal_name = self._signal_name or reason
        self.stop_event.set()
        run_stop = self._run_stop
        if run_stop is not None:
            run_stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum, frame) -> None:
            # Only set flags here: writing to stdout from a handler can re-enter the buffer.
            self.request_stop(signal.Signals(signum).name)
            # A second signal takes the default action: stop at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    # -- the loop ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        self.write(
            f"sync worker {self.name} started: a full sync every {self.interval:g}s "
            f"(checking every {self.poll:g}s for due syncs and sync-now requests)"
        )
        try:
            while not self.stopping:
                try:
                    self.step()
                except DatabaseError as exc:
                    # The database restarting must not end the worker; try again next poll.
                    self.write(f"database error, retrying: {exc}")
                    connections.close_all()
                if not self.stopping:
                    self.stop_event.wait(self.poll)
        finally:
            if self._signal_name:
                self.write(f"received {self._signal_name}: stopped")
            self.beat(SyncWorker.State.STOPPED, force=True)
            connections.close_all()
            self.write(f"sync worker {self.name} stopped")

    def step(self) -> SyncRun | None:
        """Heartbeat, and run a sync if one is due and no one else is running one."""
        self.beat()
        if self.stopping or self.due() is None:
            return None
        return self.sync()

    def due(self, *, holding_lock: bool = False) -> str | None:
        """The trigger of the sync that is due now ("sync_now", "worker"), or None.

        The interval is measured from the start of the last full sync that *completed* (or
        ended in an error of its own), never from a run still marked running or abandoned: a
        run whose worker was killed must not hold the next sync back for an interval. A run
        still marked running is waited for only while its lock has a live holder: a dead
        holder's lock is free at once on PostgreSQL (its connection dropped), and on SQLite
        once its lease runs out (at once when it ran on this host and its process is gone).
        """
        if SyncRequest.pending().exists():
            return "sync_now"
        since = timezone.now() - timedelta(seconds=self.interval)
        completed = (
            SyncRun.objects.filter(scope="", started_at__gt=since, finished_at__isnull=False)
            .exclude(status=SyncRun.Status.RUNNING)
            .exclude(error=ABANDONED)
        )
        if completed.exists():
            return None
        running = SyncRun.objects.filter(scope="", status=SyncRun.Status.RUNNING).exists()
        if running and not holding_lock and held_by_a_live_holder():
            return None  # someone is syncing now; asking for the lock would only be refused
        return "worker"

    def sync(self) -> SyncRun | None:
        run_stop = threading.Event()
        self._run_stop = run_stop
        if self.stopping:  # a signal arrived before _run_stop was visible to the handler
            return None
        lock = SyncLockHandle(
            f"worker {self.name}",
            on_renew=lambda: self.beat(SyncWorker.State.SYNCING, force=True),
            on_lost=run_stop.set,
        )
        try:
            with lock:
                if not lock.acquired:
                    return None
                # Another worker may have synced between our check and the lock.
                trigger = self.due(holding_lock=True)
                if trigger is None:
                    return None
                self.beat(SyncWorker.State.SYNCING, force=True)
                syncer = Syncer(
                    self.client_factory(),
                    concurrency=self.concurrency,
                    page_size=self.page_size,
                    trigger=trigger,
                    stop_event=run_stop,
                )
                self.write(f"sync started (trigger: {trigger})")
                try:
                    run = _run_holding_lock(syncer, None, self.name)
                except Exception as exc:
                    # Recorded on the run by the Syncer; the worker carries on.
                    log.exception("sync failed")
                    self.write(f"sync failed: {type(exc).__name__}: {exc}")
                    return syncer.run_record
                self.write(run.summary())
                prune()
                return run
        finally:
            self._run_stop = None
            if not self.stopping:
                self.beat(SyncWorker.State.IDLE, force=True)

    # -- heartbeat --------------------------------------------------------------------------

    def beat(self, state: str | None = None, *, force: bool = False) -> None:
        state = state or self._state
        now = time.monotonic()
        if not force and state == self._state and now - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._state, self._last_beat = state, now
        try:
            SyncWorker.objects.update_or_create(
                name=self.name,
                defaults={
                    "last_seen_at": timezone.now(),
                    "state": state,
                    "interval": self.interval,
                },
                create_defaults={
                    "started_at": timezone.now(),
                    "last_seen_at": timezone.now(),
                    "state": state,
                    "interval": self.interval,
                },
            )
        except DatabaseError as exc:
            log.warning("could not record the worker's heartbeat: %s", exc)


def run_loop(
    *,
    interval: float,
    concurrency: int | None = None,
    page_size: int | None = None,
    write: Callable[[str], None] | None = None,
) -> None:
    """``sync_registry --loop``: full syncs every ``interval`` seconds until SIGTERM/SIGINT.

    The command has checked the options; ``write`` gets one line per event (the command flushes
    each, so that a supervisor or a test sees progress as it happens).
    """
    worker = Worker(interval=interval, concurrency=concurrency, page_size=page_size, write=write)
    worker.install_signal_handlers()
    # Outgoing webhooks go out from the same process, in threads of their own: a slow receiver
    # never holds up a sync, and the worker's stop signal stops them too.
    webhooks = Dispatcher(stop_event=worker.stop_event).start_thread()
    worker.run_forever()
    webhooks.join(timeout=5)  # a send in flight finishes, or is sent again by the next worker
