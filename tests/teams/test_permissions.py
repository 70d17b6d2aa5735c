"""The resolver: who sees and may do what, 404 versus 403, and a constant number of queries."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template import Context, Template
from django.test import RequestFactory

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.teams import permissions
from registryui.teams.models import Level, SiteSettings, Team

pytestmark = pytest.mark.django_db

NAMES = [
    "hello",
    "platform/tools/builder",
    "secret/vault",
    "team-a/api",
    "team-a/web",
    "team-a/tools/x",
    "team-ab/api",
    "team-b/worker",
]


@pytest.fixture
def repositories() -> dict[str, Repository]:
    return {name: Repository.objects.create(name=name) for name in NAMES}


def visible(user) -> set[str]:
    return set(permissions.visible_repositories(user).values_list("name", flat=True))


def test_each_persona_sees_the_union_of_their_teams_grants(personas, repositories) -> None:
    fresh = {name: persona.fresh_user() for name, persona in personas.items()}
    assert visible(fresh["anonymous"]) == set()
    assert visible(fresh["no_team"]) == set()
    assert visible(fresh["a_viewer"]) == {"hello", "team-a/api", "team-a/web", "team-a/tools/x"}
    assert visible(fresh["a_deleter"]) == visible(fresh["a_viewer"])
    assert visible(fresh["b_admin"]) == {"team-b/worker", "platform/tools/builder"}
    assert visible(fresh["superuser"]) == set(NAMES)

    a_deleter = fresh["a_deleter"]
    assert permissions.level_on(a_deleter, "team-a/api") == Level.DELETE  # team-a-ops
    assert permissions.level_on(a_deleter, "hello") == Level.VIEW  # team-a only
    assert permissions.level_on(fresh["a_viewer"], "team-a/api") == Level.VIEW
    assert permissions.level_on(fresh["b_admin"], "team-b/worker") == Level.ADMIN
    assert permissions.level_on(fresh["superuser"], "anything/at/all") == Level.ADMIN
    names = set(
        permissions.repositories_for(a_deleter, Level.DELETE).values_list("name", flat=True)
    )
    assert names == {"team-a/api", "team-a/web", "team-a/tools/x"}


def test_hidden_is_404_and_visible_but_not_allowed_is_403(personas, repositories) -> None:
    viewer = personas["a_viewer"].fresh_user()
    with pytest.raises(Http404):
        permissions.check(viewer, Level.VIEW, "team-b/worker")
    with pytest.raises(Http404):  # hidden wins over "not allowed": no existence is confirmed
        permissions.check(viewer, Level.DELETE, "team-b/worker")
    with pytest.raises(PermissionDenied, match="delete permission on team-a/api"):
        permissions.check(viewer, Level.DELETE, "team-a/api")
    permissions.check(viewer, Level.VIEW, "team-a/api")

    with pytest.raises(Http404):
        permissions.get_repository_or_404(viewer, "team-b/worker")
    with pytest.raises(Http404):  # visible by pattern, but not in the catalog
        permissions.get_repository_or_404(viewer, "team-a/missing")
    with pytest.raises(PermissionDenied):
        permissions.get_repository_or_404(viewer, "team-a/api", Level.PUSH)
    assert permissions.get_repository_or_404(viewer, "team-a/api") == repositories["team-a/api"]


def test_capabilities(personas) -> None:
    deleter = personas["a_deleter"].fresh_user()
    caps = permissions.capabilities(deleter, "team-a/api")
    assert (caps.view, caps.push, caps.delete, caps.admin) == (True, True, True, False)
    assert not permissions.capabilities(deleter, "team-b/worker")
    assert permissions.can(deleter, Level.DELETE, "team-a/web")
    assert not permissions.can(deleter, Level.ADMIN, "team-a/web")


def test_the_capabilities_tag_hides_buttons(personas, rf: RequestFactory) -> None:
    template = Template(
        "{% load access %}{% access name as can %}"
        "{% if can.delete %}[delete]{% endif %}{% if can.view %}[view]{% endif %}"
    )
    for persona, expected in [("a_viewer", "[view]"), ("a_deleter", "[delete][view]")]:
        request = rf.get("/")
        request.user = personas[persona].fresh_user()
        assert template.render(Context({"request": request, "name": "team-a/api"})) == expected


def test_explain_names_the_grants_strongest_first(personas) -> None:
    rules = permissions.explain(personas["a_deleter"].fresh_user(), "team-a/api")
    assert [(r.level, r.pattern, r.source) for r in rules] == [
        (Level.DELETE, "team-a/*", "team team-a-ops: delete on team-a/*"),
        (Level.VIEW, "team-a/*", "team team-a: view on team-a/*"),
    ]
    assert all(r.grant_id for r in rules)
    assert permissions.explain(personas["a_deleter"].fresh_user(), "team-b/worker") == []


def test_superusers_see_everything_and_inactive_users_nothing(personas, repositories) -> None:
    user_model = get_user_model()
    root = personas["superuser"].fresh_user()
    assert permissions.visible_repositories(root).query.where.children == []  # no filter
    viewer = personas["a_viewer"].fresh_user()
    user_model.objects.filter(pk=viewer.pk).update(is_active=False)
    assert visible(personas["a_viewer"].fresh_user()) == set()
    user_model.objects.filter(pk=root.pk).update(is_active=False)
    assert visible(personas["superuser"].fresh_user()) == set()


def test_site_settings_for_users_in_no_team_and_anonymous_visitors(personas, repositories):
    site = SiteSettings.load()
    assert (site.anonymous_view, site.no_team_patterns) == (False, "")  # the defaults

    SiteSettings(no_team_patterns="hello\nplatform/*").save()
    assert visible(personas["no_team"].fresh_user()) == {"hello", "platform/tools/builder"}
    # Being in a team, even one without grants, replaces the no-team rules.
    Team.objects.create(name="empty", slug="empty").members.add(personas["no_team"].user)
    assert visible(personas["no_team"].fresh_user()) == set()
    assert visible(AnonymousUser()) == set()

    SiteSettings(anonymous_view=True, public_patterns="hello").save()
    assert visible(AnonymousUser()) == {"hello"}
    assert permissions.level_on(AnonymousUser(), "hello") == Level.VIEW
    # Logging in never shows less than the public sees.
    assert visible(personas["b_admin"].fresh_user()) == {
        "hello",
        "team-b/worker",
        "platform/tools/builder",
    }
    assert permissions.explain(personas["b_admin"].fresh_user(), "hello")[0].source == (
        "public (anonymous viewing)"
    )


def test_tags_are_narrowed_with_their_repositories(personas, repositories) -> None:
    manifest = Manifest.objects.create(
        digest="sha256:" + "a" * 64, media_type="x", kind="image", size=1, raw="{}"
    )
    for name in NAMES:  # the same image in every repository
        Tag.objects.create(repository=repositories[name], name="latest", manifest=manifest)
    siblings = permissions.visible_tags(personas["b_admin"].fresh_user()).filter(manifest=manifest)
    assert {t.repository.name for t in siblings} == {"team-b/worker", "platform/tools/builder"}


def test_rules_cached_on_a_user_follow_changes_made_since(personas, repositories) -> None:
    viewer = personas["a_viewer"].fresh_user()
    assert not permissions.can(viewer, Level.VIEW, "team-b/worker")
    team_b = Team.objects.get(name="team-b")
    team_b.members.add(viewer)
    assert permissions.can(viewer, Level.ADMIN, "team-b/worker")
    grant = team_b.grants.get(pattern="team-b/*")
    grant.level = Level.PUSH
    grant.save()
    assert permissions.level_on(viewer, "team-b/worker") == Level.PUSH
    grant.delete()
    assert not permissions.can(viewer, Level.VIEW, "team-b/worker")


# -- query counts -------------------------------------------------------------------------------


def _grow(team: Team, grants: int, repositories: int) -> None:
    team.grants.bulk_create(
        team.grants.model(team=team, pattern=f"team-a/g{i}-*", level=Level.VIEW)
        for i in range(grants)
    )
    team.grants.bulk_create(
        team.grants.model(team=team, pattern=f"x[0-9]/r{i}?", level=Level.PUSH)
        for i in range(grants)
    )
    Repository.objects.bulk_create(
        Repository(name=f"team-a/g{i % max(grants, 1)}-{i}") for i in range(repositories)
    )


@pytest.mark.parametrize("persona", ["a_viewer", "no_team", "anonymous", "public", "superuser"])
def test_narrowing_takes_the_same_queries_however_many_grants_and_repositories(
    personas, repositories, persona, django_assert_num_queries
) -> None:
    """Loading the rules is at most two queries (teams with grants, site settings); each
    narrowed list or count is then one query (none when nothing can match), and checks on
    names none at all."""
    team_a = Team.objects.get(name="team-a")
    # rules + list + count + tags count; a persona who may see nothing needs no list query.
    expected = {"a_viewer": 2 + 3, "no_team": 2, "anonymous": 1, "public": 1 + 3, "superuser": 3}
    expected = expected[persona]
    counts = []
    for grants, total in [(1, 10), (150, 1500)]:
        _grow(team_a, grants, total)
        personas[persona].apply_site_settings()
        user = personas[persona].fresh_user()
        with django_assert_num_queries(expected):
            names = list(permissions.visible_repositories(user).values_list("name", flat=True))
            permissions.visible_repositories(user).count()
            permissions.visible_tags(user).count()
            for name in NAMES:
                permissions.level_on(user, name)
                permissions.can(user, Level.DELETE, name)
        counts.append(len(names))
        Repository.objects.filter(name__startswith="team-a/g").delete()
        team_a.grants.exclude(pattern__in=["team-a/*", "hello"]).delete()
    if persona == "a_viewer":
        assert counts[1] - counts[0] == 1500 - 10  # the new repositories are visible, too
