"""Keyset cursors (registryui/api/cursors.py) over every sort of the repository list, with
ties and unknown (NULL) times: paging two at a time gives exactly the order of one query."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.api.cursors import paginate
from registryui.api.problems import Problem
from registryui.browse.views import REPOSITORY_SORTS
from registryui.catalog.models import Repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def repositories():
    now = timezone.now()
    rows = [
        # name, size, tags, updated (None: unknown): ties on every key.
        ("a/one", 10, 1, now),
        ("a/two", 10, 2, None),
        ("b/three", 30, 2, now - timedelta(days=1)),
        ("b/four", 20, 1, None),
        ("c", 10, 3, now),
        ("d", 0, 0, None),
        ("e", 30, 3, now - timedelta(days=2)),
    ]
    for name, size, tags, updated in rows:
        Repository.objects.create(name=name, size=size, tag_count=tags, last_updated_at=updated)


@pytest.mark.parametrize("sort", list(REPOSITORY_SORTS))
def test_paging_gives_the_order_of_one_query(repositories, sort):
    ordering = REPOSITORY_SORTS[sort]
    whole = paginate(Repository.objects.all(), ordering, cursor=None, limit=100, scope=sort)
    assert whole.next_cursor is None
    expected = [r.name for r in whole.items]
    paged, cursor = [], None
    for _ in range(10):
        page = paginate(Repository.objects.all(), ordering, cursor=cursor, limit=2, scope=sort)
        paged += [r.name for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert paged == expected
    assert len(expected) == 7


def test_a_cursor_survives_inserts_before_it_without_repeats(repositories):
    first = paginate(Repository.objects.all(), ("name",), cursor=None, limit=3, scope="s")
    Repository.objects.create(name="a/aaa")  # sorts before the cursor: not on a later page
    second = paginate(
        Repository.objects.all(), ("name",), cursor=first.next_cursor, limit=10, scope="s"
    )
    names = [r.name for r in first.items + second.items]
    assert len(names) == len(set(names)) == 7 and "a/aaa" not in names


@pytest.mark.parametrize("cursor", ["x", "e30", "a" * 300])
def test_a_forged_or_foreign_cursor_is_a_400(repositories, cursor):
    good = paginate(Repository.objects.all(), ("name",), cursor=None, limit=2, scope="s")
    for bad, scope in [(cursor, "s"), (good.next_cursor, "other")]:
        with pytest.raises(Problem) as caught:
            paginate(Repository.objects.all(), ("name",), cursor=bad, limit=2, scope=scope)
        assert caught.value.status == 400 and caught.value.code == "invalid_cursor"
