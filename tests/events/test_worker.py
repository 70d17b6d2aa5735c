"""``sync_registry --loop``: scheduling, one sync at a time across workers, clean stops."""

from __future__ import annotations

import itertools
import signal
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from registryui.catalog.models import SyncRun
from registryui.devtools.registry import RegistryProcess, htpasswd_line
from registryui.devtools.seed import seed_registry
from registryui.events.models import ProcessedEvent, SyncRequest, SyncWorker
from registryui.registry import RegistryClient
from registryui.sync.lock import SyncLockHandle
from registryui.sync.worker import Worker, prune

from .support import WorkerProcess, subprocess_env, sync_runs, wait_for

# -- one step at a time, in this process -------------------------------------------------------


@pytest.mark.django_db
def test_a_worker_syncs_when_due_and_then_waits_for_the_interval(use_registry, seeder_for):
    seeder_for(use_registry.url).put("team-a/api", "1.0")
    lines: list[str] = []
    worker = Worker(interval=3600, write=lines.append)

    run = worker.step()
    assert run is not None and run.trigger == "worker" and run.ok and run.tags_seen == 1
    assert worker.step() is None  # the next one is due in an hour
    assert SyncRun.objects.count() == 1
    assert any(line.startswith("sync succeeded") for line in lines)
    assert SyncWorker.objects.get(name=worker.name).state == SyncWorker.State.IDLE

    # An hour later (as far as the database knows), it is due again.
    SyncRun.objects.update(started_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert worker.step() is not None and SyncRun.objects.count() == 2


@pytest.mark.django_db
def test_a_worker_does_not_sync_while_another_holds_the_lock(use_registry):
    worker = Worker(interval=1)
    with SyncLockHandle("another worker"):
        assert worker.step() is None
    assert not SyncRun.objects.exists()
    assert worker.step() is not None


@pytest.mark.django_db
def test_a_stop_request_interrupts_the_sync_and_the_run_is_recorded(use_registry, seeder_for):
    seeder = seeder_for(use_registry.url)
    for repository in ("a/one", "a/two", "a/three"):
        seeder.put(repository, "1")
    worker = Worker(interval=1)
    worker.request_stop("SIGTERM")
    assert worker.step() is None and not SyncRun.objects.exists()

    # A stop arriving while the sync runs: the Syncer sees its stop event between requests.
    worker = Worker(interval=1, concurrency=1)
    from registryui.sync import syncer as sync

    real = sync.Syncer.list_catalog

    def list_then_stop(self):
        names = real(self)
        worker.request_stop("SIGTERM")
        return names

    sync.Syncer.list_catalog = list_then_stop
    try:
        run = worker.step()
    finally:
        sync.Syncer.list_catalog = real
    assert run is not None and run.finished_at is not None
    assert run.status == SyncRun.Status.FAILED and "Interrupted" in run.error
    assert run.repositories_removed == 0


@pytest.mark.django_db
def test_pruning_forgets_old_event_ids_and_settled_requests():
    old = timezone.now() - timedelta(days=8)
    ProcessedEvent.objects.create(event_id="old", action="push", repository="a/b", received_at=old)
    ProcessedEvent.objects.create(event_id="new", action="push", repository="a/b")
    SyncRequest.objects.create(
        status=SyncRequest.Status.DONE, requested_at=old - timedelta(days=30)
    )
    SyncRequest.objects.create(status=SyncRequest.Status.PENDING, requested_at=old)
    prune()
    assert list(ProcessedEvent.objects.values_list("event_id", flat=True)) == ["new"]
    assert list(SyncRequest.objects.values_list("status", flat=True)) == ["pending"]


@pytest.mark.django_db
def test_prune_forgets_old_sync_runs_but_keeps_the_last_good_full_sync():
    now = timezone.now()

    def run(days_ago: float, status: str, scope: str = "") -> SyncRun:
        started = now - timedelta(days=days_ago)
        return SyncRun.objects.create(
            started_at=started,
            finished_at=started + timedelta(minutes=1),
            status=status,
            scope=scope,
        )

    last_good = run(40, SyncRun.Status.SUCCEEDED)
    run(45, SyncRun.Status.SUCCEEDED)
    run(35, SyncRun.Status.FAILED)
    run(50, SyncRun.Status.SUCCEEDED, scope="team-a/api")
    recent = run(2, SyncRun.Status.FAILED)

    prune()

    assert set(SyncRun.objects.values_list("pk", flat=True)) == {last_good.pk, recent.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loop": True, "repository": "a/b"}, "--repository is for one-off runs"),
        ({"loop": True, "interval": 0}, "--interval must be a positive"),
        ({"loop": True, "page_size": 5000}, "--page-size must be within"),
    ],
)
def test_bad_loop_options_are_refused(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("sync_registry", **options)


# -- real worker processes ---------------------------------------------------------------------


def finished_syncs(worker: WorkerProcess) -> int:
    """Summary lines ("sync succeeded: …", "sync failed: …") the worker printed so far."""
    return sum(
        1
        for line in worker.output.splitlines()
        if line.startswith("sync ") and not line.startswith(("sync started", "sync worker"))
    )


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_started_together_never_sync_at_the_same_time(
    worker_database, registry, tmp_path
):
    with RegistryClient(registry.url, retries=1) as client:
        seed_registry(client, 20, 10)
    env = subprocess_env(worker_database, registry.url)
    args = ["--loop", "--interval", "1", "--concurrency", "2"]
    workers = [WorkerProcess(args, env).start() for _ in range(2)]
    try:
        # Both start at once and keep competing: a sync is due every second.
        for worker in workers:
            worker.wait_for_line("sync worker", timeout=60)
        wait_for(
            lambda: sum(finished_syncs(worker) for worker in workers) >= 4,
            timeout=120,
            interval=0.1,
            what="four finished syncs",
        )
        codes = [worker.terminate(signal.SIGTERM) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert codes == [0, 0], "\n\n".join(worker.output for worker in workers)

    state = sync_runs(env)
    runs = state["runs"]
    assert all(run["finished"] for run in runs), runs
    spans = sorted((_parse(run["started"]), _parse(run["finished"])) for run in runs)
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert started >= finished, f"two syncs overlapped: {runs}"
    assert {run["trigger"] for run in runs} == {"worker"}
    assert all(run["synced"] == 20 for run in runs if run["status"] == "succeeded")
    assert sorted(w["state"] for w in state["workers"]) == ["stopped", "stopped"]
    started_lines = sum(w.output.count("sync started") for w in workers)
    assert started_lines == len(runs)


@pytest.fixture
def slow_registry(tmp_path: Path):
    """A real registry made slow the way production ones are: Basic auth with bcrypt cost 10,
    checked on every request (about 20 requests/s here). Seeded before auth is turned on."""
    root = tmp_path / "slow-registry"
    process = RegistryProcess(root).start()
    try:
        with RegistryClient(process.url, retries=1) as client:
            seed_registry(client, 8, 5)
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
def test_sigterm_stops_a_worker_in_the_middle_of_a_sync_cleanly(worker_database, slow_registry):
    env = subprocess_env(
        worker_database, slow_registry.url, REGISTRY_USERNAME="sync", REGISTRY_PASSWORD="sync-pw"
    )
    worker = WorkerProcess(["--loop", "--interval", "600", "--concurrency", "1"], env).start()
    try:
        worker.wait_for_line("sync started", timeout=60)
        threading.Event().wait(0.5)  # well inside a sync of ~50 requests at ~20/s
        code = worker.terminate(signal.SIGTERM, timeout=60)
    finally:
        worker.kill()

    assert code == 0, worker.output
    assert "received SIGTERM: stopped" in worker.output
    state = sync_runs(env)
    (run,) = state["runs"]
    assert run["finished"] is not None
    assert run["status"] == "failed" and "Interrupted before the end" in run["error"], run
    assert run["synced"] < 8
    assert state["workers"][0]["state"] == "stopped"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_a_waiting_worker_and_sigint_works_too(worker_database, registry):
    env = subprocess_env(worker_database, registry.url)
    for sig, after in ((signal.SIGTERM, "sync succeeded"), (signal.SIGINT, "sync worker")):
        worker = WorkerProcess(["--loop", "--interval", "600"], env).start()
        try:
            worker.wait_for_line(after, timeout=60)
            code = worker.terminate(sig, timeout=30)
        finally:
            worker.kill()
        assert code == 0, worker.output
        assert f"received {sig.name}: stopped" in worker.output
    # The second worker found the first one's sync recent enough: one run in all.
    assert len(sync_runs(env)["runs"]) == 1
