"""Substring search of repository names (issue 18): on PostgreSQL a ``pg_trgm`` GIN index
answers ``name LIKE '%…%'``; SQLite has no such index and its schema is untouched.

The plan is read with sequential scans discouraged, as the planner would choose on a large
catalog (a handful of rows here would be scanned whatever the indexes). Run on SQLite and
PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import pytest
from django.db import connection

from registryui.catalog.models import Repository

pytestmark = pytest.mark.django_db


def test_a_name_substring_is_found_through_the_trigram_index_on_postgresql():
    Repository.objects.bulk_create(
        Repository(name=f"ns{n % 7}/app{n:04d}", namespace=f"ns{n % 7}") for n in range(300)
    )
    query = Repository.objects.filter(name__contains="pp012").order_by("name")
    expected = sorted(f"ns{n % 7}/app{n:04d}" for n in range(120, 130))
    assert [r.name for r in query] == expected
    # The filter alone: with ORDER BY name, a tiny table is read in the order of the name's
    # B-tree instead, which says nothing about the substring.
    sql, params = Repository.objects.filter(name__contains="pp012").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'repo_name_trgm'"
            )
            assert cursor.fetchall() == []
            return
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchall() == [("pg_trgm",)]
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Nor a full walk of the name's B-tree (filtering every row): the only plan left that
        # can answer LIKE '%…%' from an index is a bitmap scan of the trigram index.
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "repo_name_trgm" in plan, plan
