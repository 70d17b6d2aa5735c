"""Substring search of repository names, and the tags table's name filter (issue 18): on
PostgreSQL ``pg_trgm`` GIN indexes answer ``name LIKE '%…%'`` and ``UPPER(name) LIKE
UPPER('%…%')``; SQLite has no such index and its schema is untouched.

The plan is read with sequential scans discouraged, as the planner would choose on a large
catalog (a handful of rows here would be scanned whatever the indexes). Run on SQLite and
PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import pytest
from django.db import connection

from registryui.catalog.models import Manifest, Repository, Tag

pytestmark = pytest.mark.django_db


def postgres_plan(queryset, *setup: str) -> str | None:
    """EXPLAIN of ``queryset`` on PostgreSQL, with sequential scans off and ``setup`` run
    first; None on SQLite, after checking that no trigram index was made there."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE '%trgm%'")
            assert cursor.fetchall() == []
            return None
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchall() == [("pg_trgm",)]
        cursor.execute("SET LOCAL enable_seqscan = off")
        for statement in setup:
            cursor.execute(statement)
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_name_substring_is_found_through_the_trigram_index_on_postgresql():
    Repository.objects.bulk_create(
        Repository(name=f"ns{n % 7}/app{n:04d}", namespace=f"ns{n % 7}") for n in range(300)
    )
    query = Repository.objects.filter(name__contains="pp012").order_by("name")
    expected = sorted(f"ns{n % 7}/app{n:04d}" for n in range(120, 130))
    assert [r.name for r in query] == expected
    # The filter alone: with ORDER BY name, a tiny table is read in the order of the name's
    # B-tree instead, which says nothing about the substring.
    plan = postgres_plan(
        Repository.objects.filter(name__contains="pp012"),
        # Nor a full walk of the name's B-tree (filtering every row): the only plan left that
        # can answer LIKE '%…%' from an index is a bitmap scan of the trigram index.
        "SET LOCAL enable_indexscan = off",
    )
    assert plan is None or "repo_name_trgm" in plan, plan


def test_the_tags_name_filter_is_answered_by_the_trigram_index_on_postgresql():
    """The filter of a 3,000-tag repository (``browse.tags._named``'s query) finds its one
    match from the index, not by reading the repository's tags (sequential scans
    discouraged, as above; the repository's own indexes are not)."""
    repository = Repository.objects.create(name="team-a/big", namespace="team-a")
    manifest = Manifest.objects.create(digest="sha256:" + "a" * 64, media_type="x", size=1)
    Tag.objects.bulk_create(
        Tag(repository=repository, name=f"build-{n}", manifest=manifest) for n in range(3000)
    )
    Tag.objects.create(repository=repository, name="Release-2026", manifest=manifest)
    query = Tag.objects.filter(repository=repository, name__icontains="release-20")
    assert [t.name for t in query] == ["Release-2026"]
    plan = postgres_plan(
        query.order_by().values_list("pk", flat=True),
        # As autovacuum leaves it: statistics, and the GIN index's pending list merged (new
        # entries wait there, and the planner prices reading it high).
        "ANALYZE catalog_tag",
        "SELECT gin_clean_pending_list('tag_name_upper_trgm')",
    )
    assert plan is None or "tag_name_upper_trgm" in plan, plan
