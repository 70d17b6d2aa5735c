"""The repository list's order, starred first, read in two parts (``overview.StarredFirst``):
every page window must equal the one ``ORDER BY starred DESC, <sort>`` gives, for what the
user may see only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registryui.browse.views import REPOSITORY_SORTS
from registryui.catalog.models import Repository
from registryui.overview.models import Star
from registryui.overview.queries import StarredFirst
from registryui.teams.models import Level, Team
from registryui.teams.permissions import visible_repositories

pytestmark = pytest.mark.django_db

NAMES = [f"team-a/app-{i:02d}" for i in range(12)] + ["team-b/secret", "team-b/other"]


@pytest.fixture
def viewer():
    for position, name in enumerate(NAMES):
        # Sizes and tag counts in an order unlike the names', with ties.
        Repository.objects.create(
            name=name, namespace=name.split("/")[0], size=(position * 7) % 5, tag_count=position % 3
        )
    user = get_user_model().objects.create_user("viewer")
    team = Team.objects.create(name="team-a", slug="team-a")
    team.grants.create(pattern="team-a/*", level=Level.VIEW)
    team.members.add(user)
    # Two stars on visible repositories, one on a repository the viewer may not see.
    for name in ("team-a/app-09", "team-a/app-03", "team-b/secret"):
        Star.objects.create(user=user, name=name)
    return user


def expected(user, sort: str, only_starred: bool) -> list[tuple[str, bool]]:
    stars = set(Star.objects.filter(user=user).values_list("name", flat=True))
    rows = list(visible_repositories(user).order_by(*REPOSITORY_SORTS[sort]))
    ordered = [r for r in rows if r.name in stars] + [r for r in rows if r.name not in stars]
    return [(r.name, r.name in stars) for r in ordered if r.name in stars or not only_starred]


@pytest.mark.parametrize("sort", ["name", "-name", "size", "-size", "tags", "-tags"])
@pytest.mark.parametrize("only_starred", [False, True])
def test_every_window_matches_one_sort_with_the_stars_first(viewer, sort, only_starred):
    rows = StarredFirst(
        viewer, visible_repositories(viewer), REPOSITORY_SORTS[sort], only_starred=only_starred
    )
    want = expected(viewer, sort, only_starred)
    assert rows.count() == len(want) == (2 if only_starred else 12)
    for start in range(len(want) + 1):
        for stop in range(start + 1, len(want) + 2):
            got = [(r.name, r.starred) for r in rows[start:stop]]
            assert got == want[start:stop], (start, stop)
    assert "team-b/secret" not in {name for name, _ in want}


def test_without_stars_one_query_reads_the_page(viewer):
    Star.objects.filter(user=viewer).delete()
    rows = StarredFirst(viewer, visible_repositories(viewer), ("name",), only_starred=False)
    with CaptureQueriesContext(connection) as queries:
        page = rows[0:5]
    assert [r.name for r in page] == NAMES[:5]
    assert not any(r.starred for r in page)
    # The star names were read when the list was made; the page is one ordered query.
    assert len(queries.captured_queries) == 1
    assert "ORDER BY" in queries.captured_queries[0]["sql"]
