"""The team form previews an unsaved grant pattern as it is typed (issue 15, the grant form):
htmx asks the admin's pattern preview, narrowed by the resolver like the saved preview."""

from __future__ import annotations

import pytest

from registryui.catalog.models import Repository
from registryui.teams.models import Team
from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/admin/teams/team/pattern-preview/"


@pytest.fixture
def repositories(db):
    for n in range(7):
        Repository.objects.create(name=f"team-a/app-{n}")
    Repository.objects.create(name="team-b/worker")
    Repository.objects.create(name="team-b/queue")


def test_the_pattern_input_asks_for_a_live_preview(personas, repositories):  # noqa: F811
    team = Team.objects.get(name="team-a")
    page = personas["superuser"].client().get(f"/admin/teams/team/{team.pk}/change/")
    html = page.content.decode()
    assert f'hx-get="{URL}"' in html and 'hx-trigger="input changed delay:300ms"' in html
    assert '<output class="pattern-live" for="id_grants-0-pattern" aria-live="polite">' in html
    assert "/static/vendor/htmx/htmx.min.js" in html
    assert '<meta name="htmx-config"' in html and '"allowEval":false' in html


def test_the_preview_counts_and_names_what_the_typed_pattern_matches(personas, repositories):  # noqa: F811
    client = personas["superuser"].client()
    html = client.get(URL, {"grants-3-pattern": "team-a/*"}).content.decode()
    assert html == (
        'Today: <span class="pattern-preview">7 repositories: <code>team-a/app-0</code>, '
        "<code>team-a/app-1</code>, <code>team-a/app-2</code>, <code>team-a/app-3</code>, "
        "<code>team-a/app-4</code> and 2 more</span>"
    )
    one = client.get(URL, {"grants-0-pattern": "team-b/w*"}).content.decode()
    assert (
        one
        == 'Today: <span class="pattern-preview">1 repository: <code>team-b/worker</code></span>'
    )
    none = client.get(URL, {"grants-0-pattern": "nothing/*"}).content.decode()
    assert none == "Today: No repository in the catalog matches it today."
    bad = client.get(URL, {"grants-0-pattern": "Team A/*"})
    assert bad.status_code == 200 and 'class="pattern-error"' in bad.content.decode()
    assert "not a repository pattern" in bad.content.decode()
    assert "Type a pattern" in client.get(URL).content.decode()


def test_the_preview_shows_a_team_admin_only_what_they_may_see(personas, repositories):  # noqa: F811
    html = personas["b_admin"].client().get(URL, {"grants-0-pattern": "*"}).content.decode()
    assert "2 repositories: <code>team-b/queue</code>, <code>team-b/worker</code>" in html
    assert "team-a" not in html


def test_the_preview_is_for_who_manages_teams(personas, repositories):  # noqa: F811
    assert personas["a_viewer"].client().get(URL, {"p-pattern": "*"}).status_code == 302
    assert personas["anonymous"].client().get(URL, {"p-pattern": "*"}).status_code == 302
