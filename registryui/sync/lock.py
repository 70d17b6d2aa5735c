"""One sync at a time, across processes and machines, through the database.

PostgreSQL: a session-level advisory lock, taken on a connection of its own rather than on
Django's per-thread connection (whose lifetime Django manages and may close between steps).
The server releases it by itself when the holder's process dies.

SQLite: the ``SyncLock`` row, claimed by one atomic ``UPDATE … WHERE owner = '' OR expires_at <
now``. The holder renews a short lease from a background thread while it syncs; a holder that
died is replaced when its lease runs out, or at once when it ran on this host and its process is
gone (so a killed one-off ``sync_registry`` does not block the next one for a minute).

Every full or partial sync takes this lock: the worker loop, a one-off ``sync_registry`` and
"sync now" (which the worker runs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from registryui.events.models import SyncLock

log = logging.getLogger(__name__)

LOCK_NAME = "sync"
#: The advisory lock's key: "RGUISYNC" in ASCII, a constant every process agrees on.
ADVISORY_KEY = 0x5247_5549_5359_4E43
LEASE = timedelta(seconds=60)
RENEW_EVERY = 15.0


class SyncBusy(Exception):
    """Another process holds the sync lock."""


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _pid_is_gone(owner: str) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user: alive
        return False
    return False


def _uses_advisory_lock() -> bool:
    return connection.vendor == "postgresql"


class SyncLockHandle:
    """The sync lock, for one holder. Use as ``with SyncLockHandle("worker") as lock:`` and test
    ``lock.acquired``; it never waits. ``lost`` is set (and ``on_lost`` called) when the lock is
    found taken by someone else or its connection died while held."""

    def __init__(
        self,
        purpose: str,
        *,
        on_renew: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        lease: timedelta = LEASE,
        renew_every: float = RENEW_EVERY,
    ) -> None:
        self.purpose = purpose[:64]
        self.owner = new_owner_id()
        self.on_renew = on_renew
        self.on_lost = on_lost
        self.lease = lease
        self.renew_every = renew_every
        self.acquired = False
        self.lost = threading.Event()
        self._advisory = _uses_advisory_lock()
        self._pg = None  # the dedicated connection that holds the advisory lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquire and release ----------------------------------------------------------------

    def acquire(self) -> bool:
        if self.acquired:
            return True
        claimed = self._acquire_advisory() if self._advisory else self._claim_row()
        if not claimed:
            return False
        self.acquired = True
        if self._advisory:
            self._describe_holder()
        if self._needs_renewal():
            self._thread = threading.Thread(
                target=self._renew_loop, name="sync-lock-renew", daemon=True
            )
            self._thread.start()
        return True

    def release(self) -> None:
        if not self.acquired:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew_every + 5)
            self._thread = None
        self.acquired = False
        try:
            SyncLock.objects.filter(name=LOCK_NAME, owner=self.owner).update(
                owner="", purpose="", expires_at=None
            )
        except DatabaseError as exc:  # the lease runs out by itself
            log.warning("could not release the sync lock row: %s", exc)
        if self._pg is not None:
            try:
                with self._pg.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
            except Exception as exc:  # closing the connection releases it anyway
                log.warning("could not unlock the advisory lock: %s", exc)
            finally:
                self._close_pg()

    def __enter__(self) -> SyncLockHandle:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- what the status page and a refused caller see --------------------------------------

    def busy_message(self) -> str:
        holder = SyncLock.objects.filter(name=LOCK_NAME).exclude(owner="").first()
        if holder is None:
            return "Another sync is running; try again when it has finished."
        since = holder.acquired_at.strftime("%Y-%m-%d %H:%M:%S %Z") if holder.acquired_at else "?"
        return (
            f"Another sync is running ({holder.purpose or 'unknown'} on {holder.owner}, "
            f"since {since}); try again when it has finished."
        )

    # -- SQLite: the lock row ---------------------------------------------------------------

    def _claim_row(self) -> bool:
        now = timezone.now()
        self._ensure_row()
        values = {
            "owner": self.owner,
            "purpose": self.purpose,
            "acquired_at": now,
            "expires_at": now + self.lease,
        }
        free = Q(owner="") | Q(expires_at__lt=now) | Q(expires_at__isnull=True)
        if SyncLock.objects.filter(name=LOCK_NAME).filter(free).update(**values):
            return True
        current = SyncLock.objects.filter(name=LOCK_NAME).values_list("owner", flat=True).first()
        if current and _pid_is_gone(current):
            log.warning("taking over the sync lock of %s, whose process is gone", current)
            # Matching the stale owner keeps this atomic: if anyone else took it over first,
            # this UPDATE matches nothing.
            return bool(SyncLock.objects.filter(name=LOCK_NAME, owner=current).update(**values))
        return False

    @staticmethod
    def _ensure_row() -> None:
        if SyncLock.objects.filter(name=LOCK_NAME).exists():
            return
        try:
            with transaction.atomic():
                SyncLock.objects.create(name=LOCK_NAME)
        except IntegrityError:
            pass  # created by a concurrent holder

    def renew(self) -> bool:
        """Extend the lease (SQLite) or check the lock's connection (PostgreSQL); False and
        ``lost`` set when the lock is no longer ours."""
        if not self.acquired:
            return False
        try:
            if self._advisory:
                with self._pg.cursor() as cursor:
                    cursor.execute("SELECT 1")
                still_ours = True
            else:
                still_ours = bool(
                    SyncLock.objects.filter(name=LOCK_NAME, owner=self.owner).update(
                        expires_at=timezone.now() + self.lease
                    )
                )
        except DatabaseError as exc:
            # A busy SQLite file or a network blip: keep going; the lease has margin.
            log.warning("could not renew the sync lock: %s", exc)
            return True
        except Exception as exc:  # the advisory lock's own connection died: the lock is gone
            log.error("the sync lock's connection failed: %s", exc)
            still_ours = False
        if not still_ours:
            self._mark_lost()
            return False
        if self.on_renew is not None:
            try:
                self.on_renew()
            except Exception:  # a heartbeat must never break the sync
                log.exception("sync lock renewal callback failed")
        return True

    def _needs_renewal(self) -> bool:
        # An in-memory SQLite database (tests) cannot be shared with another process, and a
        # second thread's connection could not write while the first holds a transaction.
        return not (connection.vendor == "sqlite" and connection.is_in_memory_db())

    def _renew_loop(self) -> None:
        try:
            while not self._stop.wait(self.renew_every):
                if not self.renew():
                    return
        finally:
            connections.close_all()  # this thread's own connections

    def _mark_lost(self) -> None:
        if self.lost.is_set():
            return
        log.error("the sync lock was lost; stopping the sync")
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost()

    # -- PostgreSQL: the advisory lock ------------------------------------------------------

    def _acquire_advisory(self) -> bool:
        # Django turns driver errors into DatabaseError on its own connections only. PostgreSQL
        # refusing this extra one (too many clients, a restart) must be a DatabaseError too: the
        # worker loop retries those, where a bare psycopg error would end the worker.
        with connection.wrap_database_errors:
            self._pg = connection.get_new_connection(connection.get_connection_params())
            self._pg.autocommit = True
            try:
                with self._pg.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
                    got = bool(cursor.fetchone()[0])
            except Exception:
                self._close_pg()
                raise
        if not got:
            self._close_pg()
        return got

    def _describe_holder(self) -> None:
        now = timezone.now()
        self._ensure_row()
        SyncLock.objects.filter(name=LOCK_NAME).update(
            owner=self.owner, purpose=self.purpose, acquired_at=now, expires_at=None
        )

    def _close_pg(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):  # already broken: nothing else to release
                self._pg.close()
            self._pg = None


def lock_holder() -> SyncLock | None:
    """Who holds the sync lock now, or None when it is free (for the status page)."""
    row = SyncLock.objects.filter(name=LOCK_NAME).exclude(owner="").first()
    if row is None:
        return None
    if _uses_advisory_lock():
        # The row can outlive a holder that died; the server's lock table is the truth.
        high, low = (ADVISORY_KEY >> 32) & 0xFFFFFFFF, ADVISORY_KEY & 0xFFFFFFFF
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                [high, low],
            )
            held = cursor.fetchone()[0] > 0
        return row if held else None
    if row.expires_at is not None and row.expires_at < timezone.now():
        return None
    return row


def held_by_a_live_holder() -> bool:
    """Someone holds the sync lock and may still be syncing: not when the lock is free, its
    lease ran out (SQLite), or its holder ran on this host and its process is gone."""
    holder = lock_holder()
    return holder is not None and not _pid_is_gone(holder.owner)
