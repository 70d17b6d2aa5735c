"""The admin: teams with members and grants, team admins limited to their own reach, the
site settings singleton, the user page's teams, "effective permissions", the audit log."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registryui.catalog.models import Repository
from registryui.core.models import AuditEntry
from registryui.teams import permissions
from registryui.teams.models import Grant, Level, SiteSettings, Team
from tests.teams.htmlforms import form_data

pytestmark = pytest.mark.django_db

NAMES = ["hello", "platform/tools/builder", "team-a/api", "team-b/worker", "team-c/app"]


@pytest.fixture
def repositories() -> None:
    for name in NAMES:
        Repository.objects.create(name=name, tag_count=1)


def shown_repositories(client: Client) -> set[str]:
    """The repositories the repository list links to."""
    body = client.get("/").content.decode()
    return {m for m in re.findall(r'href="/r/([a-z0-9._/-]+)"', body)}


def admin_form(client: Client, url: str) -> dict[str, str]:
    """What the browser would post from the admin's change form at ``url``."""
    response = client.get(url)
    assert response.status_code == 200
    return form_data(response.content.decode(), "team_form")


def prefixes(data: dict[str, str]) -> list[str]:
    return sorted(k.removesuffix("-TOTAL_FORMS") for k in data if k.endswith("-TOTAL_FORMS"))


def member_prefix(data: dict[str, str]) -> str:
    (prefix,) = [p for p in prefixes(data) if p != "grants"]
    return prefix


def add_rows(data: dict[str, str], prefix: str, rows: list[dict]) -> None:
    """Fill the formset's extra forms (and add more) with ``rows``, as a user would."""
    initial = int(data[f"{prefix}-INITIAL_FORMS"])
    for offset, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{initial + offset}-{key}"] = str(value)
    total = max(int(data[f"{prefix}-TOTAL_FORMS"]), initial + len(rows))
    data[f"{prefix}-TOTAL_FORMS"] = str(total)


# -- superusers: a team made in the admin changes what its member sees --------------------------


def test_a_team_created_in_the_admin_changes_what_its_member_sees(personas, repositories):
    member = personas["no_team"]
    member_client = member.client()
    assert shown_repositories(member_client) == set()

    admin = personas["superuser"].client()
    data = admin_form(admin, "/admin/teams/team/add/")
    data.update({"name": "Team C", "slug": "team-c", "description": "Builds the app."})
    add_rows(data, member_prefix(data), [{"user": member.user.pk}])
    add_rows(
        data,
        "grants",
        [{"pattern": "team-c/*", "level": Level.PUSH}, {"pattern": "hello", "level": Level.VIEW}],
    )
    response = admin.post("/admin/teams/team/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]

    team = Team.objects.get(slug="team-c")
    assert list(team.members.all()) == [member.user]
    assert {(g.pattern, g.level) for g in team.grants.all()} == {
        ("team-c/*", Level.PUSH),
        ("hello", Level.VIEW),
    }
    assert shown_repositories(member_client) == {"team-c/app", "hello"}
    audit = set(AuditEntry.objects.values_list("action", "actor_name", "via"))
    assert audit == {
        ("team_created", "superuser", "admin"),
        ("team_member_added", "superuser", "admin"),
        ("grant_added", "superuser", "admin"),
    }
    assert AuditEntry.objects.filter(action="grant_added").count() == 2


def test_a_bad_pattern_is_refused_with_a_message(personas):
    admin = personas["superuser"].client()
    data = admin_form(admin, "/admin/teams/team/add/")
    data.update({"name": "Team D", "slug": "team-d"})
    add_rows(data, "grants", [{"pattern": "Team-D/*", "level": Level.VIEW}])
    response = admin.post("/admin/teams/team/add/", data)
    assert response.status_code == 200
    assert "lowercase repository-name characters" in response.content.decode()
    assert not Team.objects.filter(slug="team-d").exists()


def test_teams_are_searchable_and_filterable(personas):
    admin = personas["superuser"].client()
    body = admin.get("/admin/teams/team/", {"q": "b-admin"}).content.decode()
    assert "team-b" in body and "team-a-ops" not in body
    assert "view on platform/*, admin on team-b/*" in body  # the grants column
    body = admin.get("/admin/teams/team/", {"grants__level__exact": Level.DELETE}).content
    assert b"team-a-ops" in body and b">team-b<" not in body
    body = admin.get("/admin/teams/team/", {"q": "platform/"}).content.decode()
    assert "team-b" in body and "team-a-ops" not in body


# -- team admins --------------------------------------------------------------------------------


@pytest.fixture
def team_admin(personas) -> Client:
    return personas["b_admin"].client()


def team_b_change(client: Client, grants: list[dict]) -> tuple[str, dict[str, str]]:
    """The change URL of team-b and its form as a team admin sees it, with ``grants`` added."""
    url = f"/admin/teams/team/{Team.objects.get(name='team-b').pk}/change/"
    data = admin_form(client, url)
    add_rows(data, "grants", grants)
    return url, data


def test_team_admins_see_only_the_teams_they_administer(team_admin):
    body = team_admin.get("/admin/teams/team/").content.decode()
    assert ">team-b<" in body
    assert ">team-a<" not in body and "team-a-ops" not in body
    team_a = Team.objects.get(name="team-a")
    response = team_admin.get(f"/admin/teams/team/{team_a.pk}/change/")
    assert response.status_code == 302  # "does not exist" for them, like any hidden object
    assert team_admin.get("/admin/teams/team/add/").status_code == 403
    team_b = Team.objects.get(name="team-b")
    assert team_admin.get(f"/admin/teams/team/{team_b.pk}/delete/").status_code == 403
    assert team_admin.get("/admin/auth/user/").status_code == 403
    assert team_admin.get("/admin/teams/sitesettings/").status_code == 403
    assert team_admin.get("/admin/core/auditentry/").status_code == 403


def test_team_admins_grant_inside_what_they_administer(team_admin, personas):
    team_b = Team.objects.get(name="team-b")
    page = team_admin.get(f"/admin/teams/team/{team_b.pk}/change/").content.decode()
    # The grant a site admin gave (view on platform/*) is shown, but not editable.
    assert "platform/*" in page
    assert 'value="platform/*"' not in page
    # Name and members are read-only for them.
    assert 'name="name"' not in page

    url, data = team_b_change(team_admin, [{"pattern": "team-b/new-*", "level": Level.DELETE}])
    assert data["grants-INITIAL_FORMS"] == "1"  # only team-b/* is theirs to edit
    response = team_admin.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert team_b.grants.filter(pattern="team-b/new-*", level=Level.DELETE).exists()
    entry = AuditEntry.objects.get(action="grant_added")
    assert (entry.actor_name, entry.details["pattern"]) == ("b-admin", "team-b/new-*")


@pytest.mark.parametrize("pattern", ["team-a/*", "*", "team-b*", "platform/tools/builder"])
def test_team_admins_cannot_grant_beyond_their_reach(team_admin, pattern):
    before = set(Grant.objects.values_list("team_id", "pattern", "level"))
    url, data = team_b_change(team_admin, [{"pattern": pattern, "level": Level.VIEW}])
    response = team_admin.post(url, data)
    assert response.status_code == 200
    assert (
        "You can only grant repositories you administer in this team (team-b/*)"
        in response.content.decode()
    )
    assert set(Grant.objects.values_list("team_id", "pattern", "level")) == before


def test_a_team_admin_of_two_teams_grants_each_only_its_own_reach(team_admin, personas):
    team_c = Team.objects.create(name="team-c", slug="team-c")
    team_c.grants.create(pattern="team-c/*", level=Level.ADMIN)
    team_c.members.add(personas["b_admin"].user)
    changelist = team_admin.get("/admin/teams/team/").content.decode()
    assert ">team-b<" in changelist and ">team-c<" in changelist

    # team-c/* is theirs to manage in team-c, but not to hand to team-b's members.
    url, data = team_b_change(team_admin, [{"pattern": "team-c/api", "level": Level.VIEW}])
    response = team_admin.post(url, data)
    assert response.status_code == 200
    assert "administer in this team (team-b/*)" in response.content.decode()
    assert not Grant.objects.filter(pattern="team-c/api").exists()

    url = f"/admin/teams/team/{team_c.pk}/change/"
    data = admin_form(team_admin, url)
    add_rows(data, "grants", [{"pattern": "team-c/api", "level": Level.PUSH}])
    assert team_admin.post(url, data).status_code == 302
    assert team_c.grants.filter(pattern="team-c/api", level=Level.PUSH).exists()


def test_team_admins_cannot_touch_a_grant_outside_their_reach(team_admin):
    """A forged form row for the platform/* grant (not in their formset) changes nothing."""
    team_b = Team.objects.get(name="team-b")
    platform = team_b.grants.get(pattern="platform/*")
    url, data = team_b_change(team_admin, [])
    # Turn the extra form into a forged "initial" form that claims the platform/* grant.
    data.update(
        {
            "grants-INITIAL_FORMS": "2",
            "grants-1-id": str(platform.pk),
            "grants-1-team": str(team_b.pk),
            "grants-1-pattern": "*",
            "grants-1-level": str(Level.ADMIN),
        }
    )
    response = team_admin.post(url, data)
    assert response.status_code == 200
    platform.refresh_from_db()
    assert (platform.pattern, platform.level) == ("platform/*", Level.VIEW)
    data.update({"grants-1-DELETE": "on", "grants-1-pattern": "platform/*"})
    team_admin.post(url, data)
    assert Grant.objects.filter(pk=platform.pk).exists()


def test_team_admins_cannot_rename_their_team_or_change_its_members(team_admin, personas):
    team_b = Team.objects.get(name="team-b")
    url, data = team_b_change(team_admin, [])
    data.update({"name": "team-z", "slug": "team-z"})
    # The members inline is read-only for them; forge a row anyway.
    add_rows(data, member_prefix(data), [{"user": personas["a_viewer"].user.pk}])
    response = team_admin.post(url, data)
    assert response.status_code == 302
    team_b.refresh_from_db()
    assert team_b.name == "team-b"
    assert list(team_b.members.values_list("username", flat=True)) == ["b-admin"]


def test_staff_without_an_admin_grant_manage_no_team(personas):
    viewer = personas["a_viewer"]
    viewer.user.is_staff = True
    viewer.user.save()
    client = viewer.client()
    assert client.get("/admin/teams/team/").status_code == 403
    assert client.get("/admin/teams/team/effective-permissions/").status_code == 403


# -- site settings ------------------------------------------------------------------------------


def test_site_settings_are_one_row_edited_in_place(personas):
    admin = personas["superuser"].client()
    SiteSettings.objects.all().delete()
    response = admin.get("/admin/teams/sitesettings/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/teams/sitesettings/1/change/"
    assert SiteSettings.objects.get().anonymous_view is False
    assert admin.get("/admin/teams/sitesettings/add/").status_code == 403
    assert admin.get("/admin/teams/sitesettings/1/delete/").status_code == 403

    data = {"anonymous_view": "on", "public_patterns": "hello\nBAD PATTERN", "no_team_patterns": ""}
    response = admin.post("/admin/teams/sitesettings/1/change/", data)
    assert response.status_code == 200
    assert "is not a repository pattern" in response.content.decode()
    assert SiteSettings.load().anonymous_view is False

    data["public_patterns"] = "hello"
    response = admin.post("/admin/teams/sitesettings/1/change/", data)
    assert response.status_code == 302
    assert SiteSettings.load().anonymous_view is True
    entry = AuditEntry.objects.get(action="site_settings_changed")
    assert entry.details == {"anonymous_view": True, "public_patterns": "hello"}


# -- the user page ------------------------------------------------------------------------------


def test_the_user_page_lists_and_changes_the_users_teams(personas):
    admin = personas["superuser"].client()
    deleter = personas["a_deleter"].user
    body = admin.get(f"/admin/auth/user/{deleter.pk}/change/").content.decode()
    assert "team-a-ops" in body and "delete on team-a/*" in body
    assert f"/admin/teams/team/effective-permissions/?user={deleter.username}" in body
    body = admin.get(
        "/admin/auth/user/", {"registry_teams__id__exact": Team.objects.get(name="team-b").pk}
    ).content.decode()
    assert "b-admin" in body and "a-deleter" not in body


def test_the_user_pages_teams_cost_no_query_per_team_beyond_the_widget(personas):
    """Each team row reads its grants from one prefetch; only Django's autocomplete widget
    looks up its selected team, one query a row."""
    admin = personas["superuser"].client()
    user = personas["a_deleter"].user
    counts = []
    for added in (0, 4):
        for n in range(added):
            team = Team.objects.create(name=f"extra-{n}", slug=f"extra-{n}")
            team.grants.create(pattern=f"extra-{n}/*", level=Level.VIEW)
            team.members.add(user)
        with CaptureQueriesContext(connection) as queries:
            body = admin.get(f"/admin/auth/user/{user.pk}/change/").content.decode()
        counts.append(len(queries))
    assert "view on extra-3/*" in body
    assert counts[1] - counts[0] <= 4


# -- effective permissions ----------------------------------------------------------------------


def effective(client: Client, user: str, repository: str) -> str:
    response = client.get(
        "/admin/teams/team/effective-permissions/", {"user": user, "repository": repository}
    )
    assert response.status_code == 200
    return response.content.decode()


def cell(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, f"no #{element_id}"
    return match.group(1)


def test_effective_permissions_answer_with_the_resolver(personas):
    admin = personas["superuser"].client()
    html = effective(admin, "a-deleter", "team-a/api")
    assert cell(html, "effective-level") == "delete"
    assert cell(html, "effective-actions") == "view, push, delete"
    rules = html[html.index('id="effective-rules"') :]
    assert rules.index("team team-a-ops: delete on team-a/*") < rules.index(
        "team team-a: view on team-a/*"
    )
    assert "admin on <code>team-b/*</code>" not in html
    html = effective(admin, "a-viewer", "team-b/worker")
    assert cell(html, "effective-level").startswith("none")
    assert "No rule applies" in html
    other = html[html.index('id="effective-other-grants"') :]
    assert "team-b" in other and "admin" in other  # who could give access

    # Every persona and repository: the page agrees with the resolver itself.
    for persona in personas.values():
        if not persona.authenticated:
            continue
        for name in [*NAMES, "secret/vault", "not/synced/yet"]:
            level = permissions.level_on(persona.fresh_user(), name)
            html = effective(admin, persona.user.username, name)
            expected = Level(level).label if level else "none (the repository is hidden)"
            assert cell(html, "effective-level") == expected, (persona, name)


def test_effective_permissions_of_anonymous_visitors(personas):
    admin = personas["superuser"].client()
    assert cell(effective(admin, "", "hello"), "effective-level").startswith("none")
    SiteSettings(anonymous_view=True, public_patterns="hello").save()
    html = effective(admin, "", "hello")
    assert cell(html, "effective-level") == "view"
    assert "public (anonymous viewing)" in html


@pytest.mark.parametrize(
    ("user", "repository", "message"),
    [
        ("nobody-here", "hello", "There is no user called nobody-here."),
        ("a-viewer", "Team-A/API", "is not a valid repository name"),
        ("a-viewer", "", "This field is required."),
    ],
)
def test_effective_permissions_explain_bad_input(personas, user, repository, message):
    admin = personas["superuser"].client()
    html = effective(admin, user, repository)
    assert message in html
    assert 'id="effective-level"' not in html


def test_team_admins_ask_only_about_what_they_administer(team_admin, personas):
    member = personas["b_admin"].user
    Team.objects.get(name="team-b").members.add(personas["a_viewer"].user)
    html = effective(team_admin, "a-viewer", "team-b/worker")
    assert cell(html, "effective-level") == "admin"  # now a member of team-b
    Team.objects.get(name="team-b").members.remove(personas["a_viewer"].user)
    html = effective(team_admin, member.username, "team-b/worker")
    assert cell(html, "effective-level") == "admin"
    assert 'id="effective-other-grants"' not in html  # other teams' grants are not theirs
    html = effective(team_admin, member.username, "team-a/api")
    assert "You can only look at repositories you administer (team-b/*)" in html
    assert 'id="effective-level"' not in html


def test_team_admins_cannot_enumerate_users(team_admin, personas, django_user_model):
    """Issue 11: "no user called X" vs an answer listed the site's users, and the answer said
    who is a superuser or inactive. Outside their teams' members, every name answers alike."""
    django_user_model.objects.create_user("gone", is_active=False)
    refusal = "You can only ask about members of the teams you administer (team-b)."
    answers = set()
    for name in ("superuser", "a-viewer", "gone", "nobody-here"):
        html = effective(team_admin, name, "team-b/worker")
        assert refusal in html, name
        assert 'id="effective-level"' not in html, name
        answers.add(html.replace(name, "NAME").split('id="effective', 1)[0][-2000:])
    assert len(answers) == 1  # the same page whatever the name
    # Anonymous visitors and their own members are fine; a superuser may ask about anyone.
    assert 'id="effective-level"' in effective(team_admin, "", "team-b/worker")
    everyone = personas["superuser"].client()
    assert cell(effective(everyone, "gone", "team-b/worker"), "effective-level").startswith("none")


def test_the_admin_links_to_effective_permissions(personas, team_admin):
    admin = personas["superuser"].client()
    link = 'href="/admin/teams/team/effective-permissions/"'
    assert link in admin.get("/admin/").content.decode()
    assert link in admin.get("/admin/teams/team/").content.decode()
    assert link in team_admin.get("/admin/teams/team/").content.decode()
    assert link not in team_admin.get("/admin/").content.decode()  # the index box needs perms
    assert personas["a_viewer"].client().get("/admin/teams/team/").status_code == 302


# -- the audit log ------------------------------------------------------------------------------


def test_the_audit_log_is_read_only(personas):
    from registryui.core.audit import record

    entry = record(
        "delete_tag",
        user=personas["a_deleter"].user,
        repository="team-a/api",
        reference="1.4",
        digest="sha256:" + "b" * 64,
        details={"siblings": ["1.5"]},
    )
    record("token_issued", actor_name="robot:ci", via="token", repository="team-b/worker")
    admin = personas["superuser"].client()
    body = admin.get("/admin/core/auditentry/").content.decode()
    assert "team-a/api:1.4" in body and "robot:ci" in body
    for parameter in ("?action=delete_tag", "?result__exact=ok", "?via=token"):
        assert parameter in body  # the filters by action, result and via
    assert 'name="action"' not in body  # no bulk actions (no "delete selected")
    body = admin.get("/admin/core/auditentry/", {"q": "robot:ci"}).content.decode()
    assert "robot:ci" in body and "team-a/api:1.4" not in body
    body = admin.get("/admin/core/auditentry/", {"q": "team-a/api"}).content.decode()
    assert "team-a/api:1.4" in body and "robot:ci" not in body

    change_url = f"/admin/core/auditentry/{entry.pk}/change/"
    page = admin.get(change_url).content.decode()
    assert "&quot;siblings&quot;" in page and 'name="repository"' not in page
    assert admin.post(change_url, {"repository": "forged"}).status_code == 403
    assert admin.get("/admin/core/auditentry/add/").status_code == 403
    assert (
        admin.post(f"/admin/core/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    entry.refresh_from_db()
    assert entry.repository == "team-a/api"
