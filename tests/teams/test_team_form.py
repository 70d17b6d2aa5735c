"""The team form in the admin (issue 15): members and grants with plain labels and help
text (no "Team_members object (1)"), and, for each saved grant, which repositories its
pattern matches today (count and first names), counted through the resolver."""

from __future__ import annotations

import re

import pytest

from registryui.catalog.models import Repository
from registryui.teams.models import Team
from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db


def team_page(client, name: str) -> str:
    team = Team.objects.get(name=name)
    response = client.get(f"/admin/teams/team/{team.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_members_and_grants_have_labels_help_and_names(personas):  # noqa: F811
    page = team_page(personas["superuser"].client(), "team-a")
    assert "object (" not in page
    assert re.search(r"class=\"inline_label\">a-viewer\b", page)
    assert re.search(r'<label[^>]*for="id_membership_set-0-user"[^>]*>User', page)
    assert "A member gets every grant of this team" in page
    assert re.search(r'<label[^>]*for="id_grants-0-pattern"', page)
    assert re.search(r'<label[^>]*for="id_grants-0-level"', page)
    assert "A glob on repository names" in page  # the pattern's help text, shown


def test_each_grant_previews_the_repositories_it_matches(personas):  # noqa: F811
    for n in range(7):
        Repository.objects.create(name=f"team-a/app-{n}")
    Repository.objects.create(name="team-b/worker")
    page = team_page(personas["superuser"].client(), "team-a")
    assert (
        "7 repositories: <code>team-a/app-0</code>, <code>team-a/app-1</code>, "
        "<code>team-a/app-2</code>, <code>team-a/app-3</code>, <code>team-a/app-4</code> "
        "and 2 more"
    ) in page
    # team-a's other grant, on "hello", matches nothing synced.
    assert "No repository in the catalog matches it today." in page
    assert "team-b/worker" not in page
    # A new grant's row previews its pattern as it is typed (test_pattern_live_preview.py).
    assert "Type a pattern to see which repositories it matches." in page


def test_a_team_admin_sees_the_preview_of_their_own_team(personas):  # noqa: F811
    Repository.objects.create(name="team-b/worker")
    Repository.objects.create(name="platform/tools/builder")
    page = team_page(personas["b_admin"].client(), "team-b")
    assert "1 repository: <code>team-b/worker</code>" in page
