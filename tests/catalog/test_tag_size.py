"""``Tag.size`` (issue 18, pages at a million tags): each tag carries its image's pull size
(``Manifest.total_size``), so that the tags table sorts a 100,000-tag repository by size
through an index range instead of joining and sorting every tag.

A real registry holds ``team-a/sizes``: images of one, two and three layers, and two
one-layer images of equal size (their configs differ by one character). The real Syncer
imports them; a re-push moves a tag for the next sync, and a push notification moves another
through ``catalog.store.set_tag``. The plan checks seed 5,000 rows, ANALYZE them and EXPLAIN
the page's own query, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.seed import Seeder, put_image
from registryui.lib.humanize import iec_size
from registryui.lib.natural import natural_key
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer
from tests.events.support import (  # noqa: F401 (a fixture: each test's registry is new)
    TOKEN,
    _fresh_quick_clients,
    post_events,
    push_event,
)
from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db

REPOSITORY = "team-a/sizes"


def config(note: str) -> bytes:
    """A config blob; notes of one length give configs of one size (and distinct digests)."""
    return json.dumps(
        {
            "created": "2026-06-01T12:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"note": note}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()


class Upstream:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.seeder = Seeder(client)

    def push(self, tag: str, note: str, layers: int) -> str:
        return put_image(
            self.client, REPOSITORY, tag, config(note), layers=layers, seeder=self.seeder
        )


@pytest.fixture
def upstream(use_registry):
    with RegistryClient(use_registry.url) as client:
        upstream = Upstream(client)
        upstream.push("1.10", "a", 1)
        upstream.push("1.9", "a", 1)  # the same image as 1.10
        upstream.push("b", "b", 1)  # another image of the same size
        upstream.push("mid", "m", 2)
        upstream.push("a-big", "z", 3)
        sync()
        yield upstream


def sync() -> None:
    run = Syncer(get_client()).run()
    assert run.ok, run.error


def stored() -> dict[str, tuple[int, int]]:
    """tag → (Tag.size, its manifest's total_size)."""
    return {
        name: (size, total)
        for name, size, total in Tag.objects.filter(repository__name=REPOSITORY).values_list(
            "name", "size", "manifest__total_size"
        )
    }


def in_step() -> dict[str, int]:
    rows = stored()
    assert all(size == total for size, total in rows.values()), rows
    return {name: size for name, (size, _) in rows.items()}


def rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row" class="tag-name"><a href="/r/[^"]+">([^<]+)</a>', html)


def groups(html: str) -> list[list[str]]:
    bodies = re.findall(r'<tbody class="image[^"]*"[^>]*>(.*?)</tbody>', html, re.S)
    return [rows(body) for body in bodies]


def expected(sizes: dict[str, int], *, descending: bool) -> list[str]:
    """Size order (either way), ties in natural name order (as the page promises)."""
    sign = -1 if descending else 1
    return sorted(sizes, key=lambda name: (sign * sizes[name], natural_key(name), name))


def test_the_sync_writes_each_tags_image_size(upstream):
    sizes = in_step()
    assert sizes["1.9"] == sizes["1.10"] == sizes["b"] < sizes["mid"] < sizes["a-big"]
    assert len(set(Tag.objects.filter(repository__name=REPOSITORY).values_list("manifest"))) == 4


def test_the_flat_view_sorts_by_size_both_ways_ties_by_name(upstream, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    ascending = rows(client.get(f"/r/{REPOSITORY}", {"view": "flat", "sort": "size"}).text)
    descending = rows(client.get(f"/r/{REPOSITORY}", {"view": "flat", "sort": "-size"}).text)
    assert ascending == ["1.9", "1.10", "b", "mid", "a-big"]
    assert descending == ["a-big", "mid", "1.9", "1.10", "b"]
    # The column still shows each image's size, as before.
    page = client.get(f"/r/{REPOSITORY}", {"view": "flat", "sort": "-size"}).text
    totals = dict(
        Tag.objects.filter(repository__name=REPOSITORY).values_list("name", "manifest__total_size")
    )
    shown = re.findall(r'<td class="num">([^<]+)</td>', page)
    assert shown == [iec_size(totals[name]) for name in descending]


def test_the_grouped_view_sorts_images_by_size(upstream, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    ascending = groups(client.get(f"/r/{REPOSITORY}", {"view": "grouped", "sort": "size"}).text)
    descending = groups(client.get(f"/r/{REPOSITORY}", {"view": "grouped", "sort": "-size"}).text)
    # Equal sizes: the group whose first tag comes first in natural order leads.
    assert [g[0] for g in ascending] == ["1.9", "b", "mid", "a-big"]
    assert [g[0] for g in descending] == ["a-big", "mid", "1.9", "b"]
    assert sorted(ascending[0]) == ["1.10", "1.9"]


def test_the_api_sorts_by_size_and_pages_with_its_cursor(upstream, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    for sort, descending in (("size", False), ("-size", True)):
        names, cursor = [], None
        for _ in range(5):
            query = {"sort": sort, "limit": 2} | ({"cursor": cursor} if cursor else {})
            answer = client.get(f"/api/v1/repositories/{REPOSITORY}/-/tags", query)
            assert answer.status_code == 200, answer.content
            names += [item["name"] for item in answer.json()["items"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
        assert names == expected(in_step(), descending=descending)


def test_a_tag_moved_by_a_sync_takes_its_new_images_size(upstream, personas):  # noqa: F811
    upstream.push("1.9", "z", 3)  # now the biggest image (a-big's)
    upstream.push("new", "m", 2)  # a new tag of an existing repository, on mid's image
    sync()
    sizes = in_step()
    assert sizes["1.9"] == sizes["a-big"] and sizes["new"] == sizes["mid"]
    client = personas["a_viewer"].client()
    page = rows(client.get(f"/r/{REPOSITORY}", {"view": "flat", "sort": "-size"}).text)
    assert page == ["1.9", "a-big", "mid", "new", "1.10", "b"]
    assert page == expected(sizes, descending=True)


def test_a_tag_moved_by_a_notification_takes_its_new_images_size(upstream, settings, personas):  # noqa: F811
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    digest = upstream.push("b", "four", 4)  # an image no sync has seen: four layers
    pushed = upstream.push("fresh", "four", 4)
    assert pushed == digest
    answer = post_events(
        Client(), push_event(REPOSITORY, "b", digest), push_event(REPOSITORY, "fresh", digest)
    )
    assert answer.status_code == 200 and answer.json()["applied"] == 2, answer.content
    sizes = in_step()  # a moved tag (b) and a created one (fresh)
    assert sizes["b"] == sizes["fresh"] > sizes["a-big"]
    assert Tag.objects.get(repository__name=REPOSITORY, name="b").manifest.digest == digest
    client = personas["a_viewer"].client()
    page = rows(client.get(f"/r/{REPOSITORY}", {"view": "flat", "sort": "size"}).text)
    assert page == ["1.9", "1.10", "mid", "a-big", "b", "fresh"]


# -- the migration -----------------------------------------------------------------------------

BEFORE = [("catalog", "0011_attach_referrers")]
AFTER = [("catalog", "0012_tag_size_label_value_id")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_size_of_existing_tags():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old_manifest = old.get_model("catalog", "Manifest")
    old_tag = old.get_model("catalog", "Tag")
    repository = old.get_model("catalog", "Repository").objects.create(name="old/one")
    sizes = {"small": 1_000, "large": 7_000_000_000}  # past 32 bits: a BigIntegerField
    for name, total in sizes.items():
        manifest = old_manifest.objects.create(
            digest="sha256:" + hashlib.sha256(name.encode()).hexdigest(),
            media_type="application/vnd.oci.image.manifest.v1+json",
            kind="image",
            size=500,
            total_size=total,
            raw="{}",
        )
        for tag in (f"{name}-1", f"{name}-2"):
            old_tag.objects.create(
                repository=repository, name=tag, manifest=manifest, sort_key=natural_key(tag)
            )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert dict(Tag.objects.filter(repository__name="old/one").values_list("name", "size")) == {
        "small-1": 1_000,
        "small-2": 1_000,
        "large-1": 7_000_000_000,
        "large-2": 7_000_000_000,
    }


# -- the plans ---------------------------------------------------------------------------------

TAGS, IMAGES = 5000, 250
PAGE = 10  # of 50 rows: the first 500 tags in the order


@pytest.fixture
def many(personas):  # noqa: F811
    """``team-a/many``: 5,000 tags on 250 images of distinct sizes (and ties within each
    image), as the sync writes them; the statistics the planner would have in production."""
    repository = Repository.objects.create(name="team-a/many")
    manifests = Manifest.objects.bulk_create(
        Manifest(
            digest="sha256:" + hashlib.sha256(f"many {i}".encode()).hexdigest(),
            media_type="application/vnd.oci.image.manifest.v1+json",
            kind="image",
            size=500,
            total_size=20_000_000 + (i * 7919) % 50_000_000,
            raw="{}",
        )
        for i in range(IMAGES)
    )
    Tag.objects.bulk_create(
        Tag(
            repository=repository,
            name=f"v{i // 100}.{i % 100}.0",
            sort_key=natural_key(f"v{i // 100}.{i % 100}.0"),
            manifest=manifests[i % IMAGES],
            size=manifests[i % IMAGES].total_size,
        )
        for i in range(TAGS)
    )
    with connection.cursor() as cursor:
        for table in ("catalog_tag", "catalog_manifest", "catalog_repository"):
            cursor.execute(f"ANALYZE {table}")
    return repository


def page_query(client: Client, sort: str) -> tuple[list[str], str]:
    """The names on page 10 of the flat view in ``sort``, and the SQL that read them."""
    with CaptureQueriesContext(connection) as captured:
        answer = client.get("/r/team-a/many", {"view": "flat", "sort": sort, "page": PAGE})
    assert answer.status_code == 200
    offset = f"LIMIT 50 OFFSET {50 * (PAGE - 1)}"
    reads = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "catalog_tag"' in q["sql"] and offset in q["sql"]
    ]
    assert len(reads) == 1, [q["sql"] for q in captured.captured_queries]
    return rows(answer.content.decode()), reads[0]


def path_to(plan: dict, relation: str) -> list[dict]:
    """The nodes from the top of a JSON plan down to the scan of ``relation`` (the first one,
    depth first); [] when it is not in the plan."""
    if plan.get("Relation Name") == relation:
        return [plan]
    for child in plan.get("Plans", []):
        below = path_to(child, relation)
        if below:
            return [plan, *below]
    return []


@pytest.mark.parametrize(
    ("sort", "index"), [("size", "tag_repository_size"), ("-size", "tag_repository_size_desc")]
)
def test_the_size_sort_reads_an_index_range_and_sorts_nothing(many, personas, sort, index):  # noqa: F811
    names, sql = page_query(personas["a_viewer"].client(), sort)
    sizes = dict(many.tags.values_list("name", "size"))
    assert names == expected(sizes, descending=sort == "-size")[50 * (PAGE - 1) : 50 * PAGE]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = "\n".join(row[-1] for row in cursor.fetchall())
            assert re.search(rf"SEARCH catalog_tag USING (COVERING )?INDEX {index} ", plan), plan
            assert not re.search(r"TEMP B-TREE FOR (RIGHT PART OF )?ORDER BY", plan), plan
            return
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        document = cursor.fetchone()[0]
    document = json.loads(document) if isinstance(document, str) else document
    path = path_to(document[0]["Plan"], "catalog_tag")
    scan = path[-1]
    assert (scan["Node Type"], scan.get("Index Name")) == ("Index Scan", index), document
    assert not [n["Node Type"] for n in path if "Sort" in n["Node Type"]], document
    # The scan stops at the end of the page: 500 of the 5,000 tags are read, not all of them.
    assert scan["Actual Rows"] <= 50 * PAGE + 1, document
