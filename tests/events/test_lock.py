"""The sync lock: one holder at a time, on SQLite (lock row) and PostgreSQL (advisory lock)."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from registryui.catalog.models import SyncRun
from registryui.events.models import SyncLock, SyncRequest
from registryui.sync.lock import LOCK_NAME, SyncLockHandle, lock_holder
from registryui.sync.worker import Worker, close_abandoned_runs

pytestmark = pytest.mark.django_db

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the lock row is the lock only on SQLite"
)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the advisory lock has a connection of its own"
)


def test_a_second_holder_is_refused_until_the_first_releases():
    first = SyncLockHandle("first")
    second = SyncLockHandle("second")
    assert first.acquire()
    try:
        assert not second.acquire()
        assert "Another sync is running (first on" in second.busy_message()
        holder = lock_holder()
        assert holder is not None and holder.owner == first.owner
    finally:
        first.release()
    assert lock_holder() is None
    assert second.acquire()
    second.release()


def test_a_one_off_sync_refuses_to_start_while_the_lock_is_held(use_registry):
    with SyncLockHandle("worker elsewhere") as held:
        assert held.acquired
        with pytest.raises(CommandError, match="Another sync is running"):
            call_command("sync_registry")
    assert not SyncRun.objects.exists()
    call_command("sync_registry")  # free again
    assert SyncRun.objects.get().ok


def test_a_one_off_sync_holds_the_lock_while_it_runs(use_registry, monkeypatch):
    from registryui.sync.syncer import Syncer

    seen = {}
    real_run = Syncer.run

    def spying_run(self, repository=None):
        seen["holder"] = lock_holder()
        seen["other"] = SyncLockHandle("intruder").acquire()
        return real_run(self, repository)

    monkeypatch.setattr(Syncer, "run", spying_run)
    call_command("sync_registry")
    assert seen["holder"] is not None and seen["holder"].purpose == "command"
    assert seen["other"] is False
    assert lock_holder() is None


@sqlite_only
def test_an_expired_lease_can_be_taken_over():
    SyncLock.objects.create(
        name=LOCK_NAME,
        owner="other-host:1:abcd",
        purpose="worker",
        acquired_at=timezone.now() - timedelta(minutes=5),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    handle = SyncLockHandle("worker")
    assert handle.acquire()
    assert SyncLock.objects.get().owner == handle.owner
    handle.release()


@sqlite_only
def test_a_live_lease_of_another_host_is_respected():
    SyncLock.objects.create(
        name=LOCK_NAME,
        owner="other-host:1:abcd",
        purpose="worker",
        acquired_at=timezone.now(),
        expires_at=timezone.now() + timedelta(seconds=60),
    )
    assert not SyncLockHandle("worker").acquire()
    assert SyncLock.objects.get().owner == "other-host:1:abcd"


@sqlite_only
def test_the_lease_of_a_dead_process_on_this_host_is_taken_over_at_once():
    dead_pid = 4_000_000  # above the kernel's pid_max: no such process
    SyncLock.objects.create(
        name=LOCK_NAME,
        owner=f"{socket.gethostname()}:{dead_pid}:abcd",
        purpose="command",
        acquired_at=timezone.now(),
        expires_at=timezone.now() + timedelta(seconds=60),
    )
    handle = SyncLockHandle("worker")
    assert handle.acquire()
    handle.release()


@sqlite_only
def test_renewing_extends_the_lease_and_notices_a_lost_lock():
    beats, lost = [], []
    handle = SyncLockHandle(
        "worker", on_renew=lambda: beats.append(1), on_lost=lambda: lost.append(1)
    )
    assert handle.acquire()
    SyncLock.objects.filter(name=LOCK_NAME).update(expires_at=timezone.now())
    assert handle.renew()
    assert SyncLock.objects.get().expires_at > timezone.now() + timedelta(seconds=30)
    assert beats == [1]

    SyncLock.objects.filter(name=LOCK_NAME).update(owner="thief:1:x")
    assert not handle.renew()
    assert handle.lost.is_set() and lost == [1]
    handle.release()
    assert SyncLock.objects.get().owner == "thief:1:x"  # release never frees someone else's


def test_runs_left_running_by_a_dead_process_are_closed_under_the_lock():
    abandoned = SyncRun.objects.create(trigger="worker")
    finished = SyncRun.objects.create(
        trigger="worker", status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now()
    )
    assert close_abandoned_runs() == 1
    abandoned.refresh_from_db()
    finished.refresh_from_db()
    assert abandoned.status == SyncRun.Status.FAILED and "Abandoned" in abandoned.error
    assert abandoned.finished_at is not None
    assert finished.status == SyncRun.Status.SUCCEEDED


def test_a_full_one_off_sync_answers_pending_sync_requests(use_registry):
    request = SyncRequest.objects.create()
    call_command("sync_registry")
    request.refresh_from_db()
    assert request.status == SyncRequest.Status.DONE and request.run == SyncRun.objects.get()


@postgresql_only
def test_a_refused_lock_connection_is_a_database_error_the_worker_retries(monkeypatch):
    """PostgreSQL refusing the lock's own connection (too many clients, a restart) while
    Django's connection still works: the worker loop retries a DatabaseError; a bare psycopg
    error ended the worker. The refusal is made by pointing new connections at a closed port."""
    params = connection.get_connection_params()
    monkeypatch.setattr(connection, "get_connection_params", lambda: {**params, "port": 9})

    with pytest.raises(DatabaseError):
        SyncLockHandle("worker").acquire()
    with pytest.raises(DatabaseError):
        Worker(interval=1).step()
    assert not SyncRun.objects.exists()
