"""The tags table of a repository page (issue 14): the filter, natural order, the flat view
and the grouped view (groups by their newest tag, big groups collapsed), the remembered
choice, row actions and copy buttons, and "select all N matching" for bulk delete.

A real registry holds ``team-a/builds`` with 60 tags ``build-0`` … ``build-59`` (pushed with
the Seeder, synced by the real Syncer); ``build-40`` … ``build-59`` share one image. Change
times are set on the rows, as a push at that time would have.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registryui.catalog.models import Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.seed import Seeder
from registryui.lib.natural import natural_key, natural_sorted
from registryui.sync.syncer import Syncer
from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db

NAMES = [f"build-{i}" for i in range(60)]


def rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row" class="tag-name"><a href="/r/[^"]+">([^<]+)</a>', html)


def groups(html: str) -> list[list[str]]:
    bodies = re.findall(r'<tbody class="image[^"]*"[^>]*>(.*?)</tbody>', html, re.S)
    return [rows(body) for body in bodies]


@pytest.fixture
def builds(use_registry):
    seeder = Seeder(get_client())
    seeder.put_many(
        [("team-a/builds", name, "shared" if i >= 40 else None) for i, name in enumerate(NAMES)],
        concurrency=4,
    )
    run = Syncer(get_client(), concurrency=4).run()
    assert run.ok, run.error
    # build-N changed N minutes after the first: build-59 is the newest.
    start = timezone.now() - timedelta(days=1)
    for i, name in enumerate(NAMES):
        Tag.objects.filter(repository__name="team-a/builds", name=name).update(
            changed_at=start + timedelta(minutes=i)
        )
    return Repository.objects.get(name="team-a/builds")


def test_the_sort_key_is_written_by_the_sync_and_orders_naturally(builds):
    stored = dict(builds.tags.values_list("name", "sort_key"))
    assert stored == {name: natural_key(name) for name in NAMES}
    in_database = list(builds.tags.order_by("sort_key", "name").values_list("name", flat=True))
    assert in_database == NAMES  # build-2 before build-10, on SQLite and PostgreSQL
    assert natural_sorted(["build-10", "build-2", "1.10", "1.9", "v2", "latest"]) == [
        "1.9",
        "1.10",
        "build-2",
        "build-10",
        "latest",
        "v2",
    ]


def test_a_60_tag_repository_finds_build_3_by_filter(builds, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    html = client.get("/r/team-a/builds", {"q": "build-3", "view": "flat"}).content.decode()
    # The exact name first, then the other prefix matches, newest first (the default sort).
    assert rows(html) == ["build-3"] + [f"build-{i}" for i in range(39, 29, -1)]
    assert "11 tags match <code>build-3</code>" in html
    # A substring: "-5" is inside build-5 and build-50 … build-59.
    html = client.get("/r/team-a/builds", {"q": "d-5", "sort": "tag"}).content.decode()
    assert rows(html) == ["build-5"] + [f"build-{i}" for i in range(50, 60)]
    # Nothing matches: said, with a way back.
    html = client.get("/r/team-a/builds", {"q": "nightly"}).content.decode()
    assert "No tag of team-a/builds contains <code>nightly</code>" in html
    assert rows(html) == []


@pytest.mark.parametrize("view", ["flat", "grouped"])
def test_a_filter_with_few_matches_lists_them_by_id_with_the_same_answer(
    builds,
    personas,  # noqa: F811
    monkeypatch,
    view,
):
    """Few matches are taken by id (``tags._named``), many by the name filter itself: the
    rows, their order and the counts are the same either way."""
    from registryui.browse import tags as tags_table

    client = personas["a_viewer"].client()
    queries = [{"q": "build-3", "view": view}, {"q": "d-5", "sort": "tag", "view": view}]
    by_id = []
    for query in queries:
        with CaptureQueriesContext(connection) as captured:
            html = client.get("/r/team-a/builds", query).content.decode()
        assert any(" IN (" in q["sql"] and "LIKE" not in q["sql"] for q in captured), query
        by_id.append(html)
    monkeypatch.setattr(tags_table, "FILTER_IDS_MAX", 5)  # 11 matches: too many for ids
    for query, expected in zip(queries, by_id, strict=True):
        html = client.get("/r/team-a/builds", query).content.decode()
        assert (rows(html), groups(html)) == (rows(expected), groups(expected))
        assert re.search(r"\d+ tags? match", html).group(0) in expected
    if view == "flat":
        assert rows(by_id[1]) == ["build-5"] + [f"build-{i}" for i in range(50, 60)]


def test_the_filter_works_without_javascript_and_with_htmx(builds, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    page = client.get("/r/team-a/builds").content.decode()
    form = re.search(r'<form id="tag-filter-form"[^>]*>', page).group(0)
    assert 'method="get"' in form and 'action="/r/team-a/builds"' in form
    assert 'hx-get="/r/team-a/builds"' in page and 'name="q"' in page
    # The sort and the view ride along with the filter form.
    assert 'name="sort" value="-changed" form="tag-filter-form"' in page
    fragment = client.get(
        "/r/team-a/builds", {"q": "build-3", "view": "flat"}, headers={"HX-Request": "true"}
    )
    html = fragment.content.decode()
    assert "<html" not in html and 'id="tag-filter"' not in html
    assert rows(html)[0] == "build-3"


def test_bad_filter_and_view_values_are_400(builds, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    response = client.get("/r/team-a/builds", {"q": "a b/c"})
    assert response.status_code == 400
    assert "cannot be part of a tag" in response.content.decode()
    response = client.get("/r/team-a/builds", {"view": "tiles"})
    assert response.status_code == 400
    assert "view=&#x27;tiles&#x27; is not one of: grouped, flat" in response.content.decode()


def test_the_name_sort_is_natural_across_pages(builds, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    first = client.get("/r/team-a/builds", {"view": "flat", "sort": "tag"}).content.decode()
    second = client.get(
        "/r/team-a/builds", {"view": "flat", "sort": "tag", "page": "2"}
    ).content.decode()
    assert rows(first) == NAMES[:50]
    assert rows(second) == NAMES[50:]
    backwards = client.get("/r/team-a/builds", {"view": "flat", "sort": "-tag"}).content.decode()
    assert rows(backwards)[:3] == ["build-59", "build-58", "build-57"]


def test_the_flat_view_is_really_newest_first(builds, personas):  # noqa: F811
    html = personas["a_viewer"].client().get("/r/team-a/builds", {"view": "flat"}).content.decode()
    assert rows(html) == [f"build-{i}" for i in range(59, 9, -1)]


def test_groups_are_ordered_by_their_newest_tag_and_big_ones_collapse(builds, personas):  # noqa: F811
    client = personas["a_viewer"].client()
    # build-12 becomes the newest change of all: its image's group comes first.
    Tag.objects.filter(repository=builds, name="build-12").update(changed_at=timezone.now())
    html = client.get("/r/team-a/builds", {"view": "grouped"}).content.decode()
    found = groups(html)
    assert found[0] == ["build-12"]
    # The 20 tags of the shared image: one group of five, newest first, "15 more tags".
    assert found[1] == ["build-59", "build-58", "build-57", "build-56", "build-55"]
    assert found[2:5] == [["build-39"], ["build-38"], ["build-37"]]
    shared = html.split('<tbody class="image shared"', 1)[1].split("</tbody>", 1)[0]
    assert "20 tags on this image" in shared
    digest = Tag.objects.get(repository=builds, name="build-59").manifest.digest
    assert f'<a class="more-tags" href="/r/team-a/builds@{digest}">15 more tags</a>' in shared
    assert "60 tags on 41 images, showing images 1–20" in html  # noqa: RUF001
    assert len(found) == 20


def test_the_chosen_view_is_remembered_anonymous_users_too(builds, personas):  # noqa: F811
    client = personas["public"].client()
    # "public" may view "hello" only; give the anonymous viewer team-a/builds too.
    from registryui.teams.models import SiteSettings

    site = SiteSettings.load()
    site.public_patterns = "hello\nteam-a/builds"
    site.save()
    assert len(groups(client.get("/r/team-a/builds").content.decode())) == 20
    client.get("/r/team-a/builds", {"view": "flat"})
    html = client.get("/r/team-a/builds").content.decode()
    assert groups(html) == [] and len(rows(html)) == 50
    assert 'aria-current="true" class="current">One row per tag</a>' in html
    client.get("/r/team-a/builds", {"view": "grouped"})
    assert len(groups(client.get("/r/team-a/builds").content.decode())) == 20


def test_rows_have_copy_buttons_and_actions_by_permission(builds, personas):  # noqa: F811
    deleter = personas["a_deleter"].client().get("/r/team-a/builds", {"view": "flat"})
    html = deleter.content.decode()
    tag = Tag.objects.select_related("manifest").get(repository=builds, name="build-59")
    row = html.split(f'<tr data-digest="{tag.manifest.digest}">', 1)[1].split("</tr>", 1)[0]
    assert 'data-copy-text="docker pull registry.example.com/team-a/builds:build-59"' in row
    assert f'data-copy-text="{tag.manifest.digest}"' in row
    assert 'href="/r/team-a/builds:build-59/-/add-tags"' in row
    assert 'href="/r/team-a/builds:build-59/-/delete"' in row
    assert 'href="/r/team-a/builds:build-59/-/copy"' in row
    viewer = personas["a_viewer"].client().get("/r/team-a/builds", {"view": "flat"})
    html = viewer.content.decode()
    assert 'data-copy-text="docker pull registry.example.com/team-a/builds:build-59"' in html
    assert "/-/add-tags" not in html and "/-/delete" not in html and "/-/copy" not in html


def test_select_all_matching_lists_every_match_beyond_the_page(builds, personas):  # noqa: F811
    client = personas["a_deleter"].client()
    html = client.get("/r/team-a/builds", {"view": "flat", "q": "build"}).content.decode()
    assert len(rows(html)) == 50
    link = "/r/team-a/builds/-/bulk-delete?all=1&amp;q=build"
    assert f'href="{link}">Select all 60 matching tags to delete…</a>' in html
    confirmation = client.get("/r/team-a/builds/-/bulk-delete", {"all": "1", "q": "build"})
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert "Delete 60 tags of" in page
    confirmed = re.findall(r'name="confirm" value="([^"@]+)@', page)
    assert sorted(confirmed) == sorted(NAMES)
    # Filtered: only the matching ones, listed in natural order.
    page = client.get("/r/team-a/builds/-/bulk-delete", {"all": "1", "q": "build-3"})
    listed = re.findall(r'name="confirm" value="([^"@]+)@', page.content.decode())
    assert listed == ["build-3"] + [f"build-{i}" for i in range(30, 40)]
    # A viewer has no such link, and the confirmation is a 403.
    viewer = personas["a_viewer"].client()
    assert "Select all" not in viewer.get("/r/team-a/builds", {"view": "flat"}).content.decode()
    assert viewer.get("/r/team-a/builds/-/bulk-delete", {"all": "1"}).status_code == 403
    assert client.get("/r/team-a/builds/-/bulk-delete", {"all": "1", "q": "zz"}).status_code == 400


def test_select_all_past_the_bulk_limit_is_refused(builds, personas, settings):  # noqa: F811
    from registryui.cleanup import forms, views

    settings.DEBUG = False
    client = personas["a_deleter"].client()
    original = views.MAX_BULK_TAGS
    views.MAX_BULK_TAGS = forms.MAX_BULK_TAGS = 10
    try:
        response = client.get("/r/team-a/builds/-/bulk-delete", {"all": "1", "q": "build"})
    finally:
        views.MAX_BULK_TAGS = forms.MAX_BULK_TAGS = original
    assert response.status_code == 400
    assert "More than 10 tags match" in response.content.decode()


def test_the_tag_order_uses_the_index_on_both_databases(builds):
    """The natural sort is an indexed ORDER BY, not a sort of every tag in Python."""
    queryset = Tag.objects.filter(repository=builds).order_by("sort_key", "name")[:50]
    with CaptureQueriesContext(connection) as captured:
        list(queryset)
    sql = captured.captured_queries[-1]["sql"]
    assert "sort_key" in sql and "LIMIT 50" in sql
    plan = queryset.explain()
    assert "tag_repository_sort_key" in plan or "Index" in plan or "INDEX" in plan


def test_a_repository_too_big_to_group_opens_flat(builds, personas, monkeypatch):  # noqa: F811
    """Above GROUPED_MAX_TAGS the page opens flat, whatever the session remembered: grouping
    aggregates every tag of the repository (issue 18); asked for by name, it still groups."""
    from registryui.browse import tags as tags_table

    client = personas["a_deleter"].client()
    client.get("/r/team-a/builds", {"view": "grouped"})  # remembered
    assert len(groups(client.get("/r/team-a/builds").content.decode())) == 20
    builds.refresh_from_db()
    monkeypatch.setattr(tags_table, "GROUPED_MAX_TAGS", builds.tag_count - 1)
    html = client.get("/r/team-a/builds").content.decode()
    assert groups(html) == [] and len(rows(html)) == 50
    assert "grouping by image is slow, so it opens only when chosen" in html
    assert 'aria-current="true" class="current">One row per tag</a>' in html
    html = client.get("/r/team-a/builds", {"view": "grouped"}).content.decode()
    assert len(groups(html)) == 20 and "opens only when chosen" not in html
    monkeypatch.setattr(tags_table, "GROUPED_MAX_TAGS", builds.tag_count)
    assert len(groups(client.get("/r/team-a/builds").content.decode())) == 20
