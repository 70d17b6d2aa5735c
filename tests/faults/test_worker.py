"""The sync worker killed with ``kill -9`` (issue #12, item 10), against a real registry.

A worker that dies mid-sync leaves its run marked "running" and, on SQLite, its lock row
leased. The next worker must take over once the lock is free (PostgreSQL frees the advisory
lock when the dead process's connection drops; SQLite when the lease runs out, or at once when
the holder ran on this host and its process is gone) and schedule from the last *completed*
run, not from the dead run's start.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from registryui.catalog.models import Repository, SyncRun
from registryui.devtools.registry import RegistryProcess, htpasswd_line
from registryui.devtools.seed import seed_registry
from registryui.events.models import SyncLock
from registryui.registry import RegistryClient
from registryui.sync.lock import LOCK_NAME, SyncLockHandle
from registryui.sync.worker import Worker, close_abandoned_runs
from tests.events.support import (  # noqa: F401 (fixtures)
    WorkerProcess,
    seeder_for,
    subprocess_env,
    sync_runs,
    worker_database,
)

REPOSITORIES = 8


@pytest.fixture
def slow_registry(tmp_path: Path):
    """A real registry made slow the way production ones are: Basic auth with bcrypt cost 10,
    checked on every request (about 20 requests/s here), so a sync lasts a few seconds and a
    worker can be killed in the middle of one. Seeded before auth is turned on."""
    root = tmp_path / "slow-registry"
    process = RegistryProcess(root).start()
    try:
        with RegistryClient(process.url, retries=1) as client:
            seed_registry(client, REPOSITORIES, 5)
        process.stop()
        htpasswd = root / "htpasswd-cost10"
        htpasswd.write_text(htpasswd_line("sync", "sync-pw", rounds=10) + "\n")
        process.extra_config = {"auth": {"htpasswd": {"realm": "slow", "path": str(htpasswd)}}}
        process.start()
        yield process
    finally:
        process.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_sync_does_not_hold_the_next_sync_back_an_interval(
    worker_database,  # noqa: F811
    slow_registry,
):
    env = subprocess_env(
        worker_database, slow_registry.url, REGISTRY_USERNAME="sync", REGISTRY_PASSWORD="sync-pw"
    )
    # A ten-minute interval: before the fix the next sync waited for it, from the dead start.
    args = ["--loop", "--interval", "600", "--concurrency", "1"]
    first = WorkerProcess(args, env).start()
    try:
        first.wait_for_line("sync started", timeout=60)
        threading.Event().wait(0.5)  # well inside a sync of ~50 requests at ~20/s
        first.process.kill()  # SIGKILL: no handler runs, nothing is cleaned up
        first.process.wait(timeout=10)
    finally:
        first.kill()
    (dead,) = sync_runs(env)["runs"]
    assert dead["status"] == "running" and dead["finished"] is None, dead

    second = WorkerProcess(args, env).start()
    try:
        # Bounded wait on state, not a timing assertion: a minute is far below the interval.
        second.wait_for_line("sync succeeded", timeout=60)
        assert second.terminate(signal.SIGTERM) == 0
    finally:
        second.kill()

    state = sync_runs(env)
    runs = state["runs"]
    assert [run["status"] for run in runs] == ["failed", "succeeded"], runs
    assert runs[0]["id"] == dead["id"] and runs[0]["error"].startswith("Abandoned"), runs
    assert runs[1]["trigger"] == "worker" and runs[1]["synced"] == REPOSITORIES, runs
    # The status page no longer shows the dead worker as syncing.
    states = {w["name"].rsplit(":", 1)[1]: w["state"] for w in state["workers"]}
    assert states == {str(first.process.pid): "stopped", str(second.process.pid): "stopped"}


@pytest.mark.django_db
def test_the_schedule_counts_completed_runs_only():
    worker = Worker(interval=600)
    now = timezone.now()
    dead = SyncRun.objects.create(started_at=now - timedelta(seconds=5))  # still "running"
    assert worker.due() == "worker"  # nobody holds the lock: that run's worker is gone
    with SyncLockHandle("worker elsewhere") as lock:
        assert lock.acquired
        assert worker.due() is None  # a live holder is syncing: wait, do not ask for the lock
        assert worker.due(holding_lock=True) == "worker"

    close_abandoned_runs()
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.FAILED
    assert worker.due() == "worker"  # abandoned: not a completed run either

    SyncRun.objects.create(
        started_at=now - timedelta(seconds=100),
        finished_at=now - timedelta(seconds=90),
        status=SyncRun.Status.SUCCEEDED,
    )
    assert worker.due() is None  # the interval runs from the last completed run
    SyncRun.objects.create(
        started_at=now - timedelta(seconds=700),
        finished_at=now - timedelta(seconds=690),
        status=SyncRun.Status.FAILED,
        error="The registry did not answer.",
    )
    assert worker.due() is None


@pytest.mark.django_db
def test_a_lock_leased_by_a_worker_on_another_host_is_taken_over_when_the_lease_ends(
    use_registry,
    seeder_for,  # noqa: F811
):
    """The dead worker ran on another machine: its process cannot be looked up, so its lease
    must run out first (SQLite; PostgreSQL's advisory lock died with its connection). Then the
    next step syncs at once, and the dead run is closed as abandoned."""
    seeder_for(use_registry.url).put("team-a/api", "1.0")
    now = timezone.now()
    dead = SyncRun.objects.create(started_at=now - timedelta(seconds=90))
    SyncLock.objects.update_or_create(
        name=LOCK_NAME,
        defaults={
            "owner": "another-host:4242:dead",
            "purpose": "worker another-host:4242",
            "acquired_at": now - timedelta(seconds=90),
            "expires_at": now - timedelta(seconds=1),  # the lease has just run out
        },
    )

    run = Worker(interval=600).step()

    assert run is not None and run.status == SyncRun.Status.SUCCEEDED
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.FAILED and dead.error.startswith("Abandoned")
    assert Repository.objects.filter(name="team-a/api").exists()
