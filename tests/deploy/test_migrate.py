"""deploy/migrate.py: migrations at start-up, one replica at a time, after the database is up."""

from __future__ import annotations

import os
import subprocess

import pytest

from .support import BASE_DIR, AppDatabase, app_env, wait_until

SCRIPT = str(BASE_DIR / "deploy" / "migrate.py")
PYTHON = str(BASE_DIR / ".venv" / "bin" / "python")


def postgres_available() -> bool:
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return False
    try:
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def test_it_migrates_a_new_database(tmp_path):
    database = AppDatabase(tmp_path)
    try:
        done = subprocess.run(
            [PYTHON, SCRIPT], env=app_env(DATABASE_URL=database.url), capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Applying auth.0001_initial... OK" in done.stdout
        again = subprocess.run(
            [PYTHON, SCRIPT], env=app_env(DATABASE_URL=database.url), capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode == 0
        assert "No migrations to apply." in again.stdout
    finally:
        database.drop()


@pytest.mark.skipif(
    not postgres_available(), reason="replicas share PostgreSQL: run with DATABASE_URL=postgres://"
)
def test_replicas_starting_together_migrate_one_at_a_time(tmp_path):
    import psycopg
    from deploy_migrate_lock import MIGRATE_LOCK_ID

    database = AppDatabase(tmp_path)
    processes: list[subprocess.Popen] = []
    try:
        with psycopg.connect(database.url, autocommit=True) as holder:
            # We hold the lock: both "replicas" must queue behind it, not run migrate.
            holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_ID])
            for _ in range(2):
                replica = subprocess.Popen(
                    [PYTHON, SCRIPT],
                    env=app_env(DATABASE_URL=database.url),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                processes.append(replica)

            def both_waiting() -> bool:
                row = holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                    [database.name],
                ).fetchone()
                return row[0] == 2

            wait_until(both_waiting, timeout=120, interval=0.2, what="both replicas to wait")
            tables = holder.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_name = 'django_migrations'"
            ).fetchone()[0]
            assert tables == 0  # nobody migrated while we held the lock
            holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_ID])
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs
        # One applied everything, the other found nothing left to do.
        assert sorted("No migrations to apply." in out for out in outputs) == [False, True]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        database.drop()


def test_it_waits_for_the_database_and_then_gives_up_clearly(tmp_path):
    from registryui.devtools.registry import free_port

    url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    done = subprocess.run(
        [PYTHON, SCRIPT], env=app_env(DATABASE_URL=url, DATABASE_WAIT="1"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "migrate: waiting for the database" in done.stderr
    assert "the database did not answer within 1 s" in done.stderr


@pytest.fixture(autouse=True)
def _importable_lock_id(monkeypatch):
    """deploy/ is no package: load migrate.py's lock id as a module for the test."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("deploy_migrate_lock", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "deploy_migrate_lock", module)
