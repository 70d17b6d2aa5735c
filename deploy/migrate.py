"""Apply database migrations at start-up, one process at a time.

Several ``ui`` replicas may start together (``docker compose up --scale ui=3``, a rolling
update). Two ``migrate`` runs at once can both try to create the same table; on PostgreSQL a
session advisory lock makes them take turns, and the second finds nothing left to do. The lock
goes away with the connection, so a process that dies while holding it blocks nobody.

Before that it waits for the database to accept connections (``DATABASE_WAIT`` seconds,
default 60), for platforms that start containers without Compose's ``depends_on``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

#: Our advisory lock key: "regui-mg" as a 64-bit integer, unlikely to clash with anyone's.
MIGRATE_LOCK_ID = int.from_bytes(b"regui-mg", "big")


def wait_for_database(connection, seconds: float) -> None:
    from django.db import OperationalError

    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"migrate: the database did not answer within {seconds:.0f} s: {exc}"
                ) from None
            print(f"migrate: waiting for the database ({exc})", file=sys.stderr, flush=True)
            time.sleep(2)


def main() -> int:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registryui.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    wait_for_database(connection, float(os.environ.get("DATABASE_WAIT", "60")))
    if connection.vendor != "postgresql":
        # SQLite serves one host; its writers already queue on the database file's lock.
        call_command("migrate", interactive=False)
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_ID])
    try:
        call_command("migrate", interactive=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_ID])
    return 0


if __name__ == "__main__":
    sys.exit(main())
