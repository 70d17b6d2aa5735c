"""/profile/robots/: team admins create robot accounts within what they administer."""

from __future__ import annotations

import hashlib
import re

import pytest

from registryui.core.models import AuditEntry
from registryui.teams.models import Grant, Level
from registryui.tokens.models import RobotAccount

pytestmark = pytest.mark.django_db
URL = "/profile/robots/"
SECRET_RE = re.compile(r"rui_robot_[A-Za-z0-9_-]{40}")


def create(client, team, **data):
    payload = {"team": team.pk, "name": "ci", "expires": "365", "grants": "team-a/ci/* push"}
    return client.post(URL, {**payload, **data})


@pytest.mark.parametrize("persona", ["viewer", "pusher", "deleter", "outsider"])
def test_only_team_admins_may_manage_robots(client, personas, persona) -> None:
    client.force_login(getattr(personas, persona))
    assert client.get(URL).status_code == 403
    assert create(client, personas.team_a_admins).status_code == 403
    assert not RobotAccount.objects.exists()


def test_a_team_admin_creates_a_robot_and_sees_its_secret_once(client, personas) -> None:
    client.force_login(personas.admin_a)
    response = create(
        client, personas.team_a_admins, grants="team-a/ci/*  push\nteam-a/base pull\n\n"
    )
    assert response.status_code == 200
    html = response.content.decode()
    secret = SECRET_RE.search(html).group(0)
    robot = RobotAccount.objects.get()
    assert robot.username == "robot$ci"
    assert robot.team == personas.team_a_admins
    assert robot.created_by == personas.admin_a
    assert robot.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert sorted(robot.grants.values_list("pattern", "level")) == [
        ("team-a/base", Level.VIEW),
        ("team-a/ci/*", Level.PUSH),
    ]
    listing = client.get(URL).content.decode()
    assert secret not in listing
    assert "robot$ci" in listing
    entry = AuditEntry.objects.get(action="robot_created")
    assert entry.actor == personas.admin_a
    assert entry.details["robot"] == "robot$ci"
    assert secret not in str(entry.details)


@pytest.mark.parametrize(
    ("grants", "message"),
    [
        ("team-b/* pull", "Not within what you administer"),
        ("* pull", "Not within what you administer"),
        ("team-* pull", "Not within what you administer"),
        ("team-a/x admin", "Line 1"),
        ("team-a/x", "Line 1"),
        ("Team-A/x pull", "Line 1"),
        ("", "This field is required"),
        ("# only a comment", "at least one grant"),
    ],
)
def test_grants_wider_than_the_admins_are_refused(client, personas, grants, message) -> None:
    client.force_login(personas.admin_a)
    response = create(client, personas.team_a_admins, grants=grants)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RobotAccount.objects.exists()


def test_an_admin_cannot_create_robots_for_another_team(client, personas) -> None:
    client.force_login(personas.admin_a)
    response = create(client, personas.team_b_admins, grants="team-b/* pull")
    assert response.status_code == 400
    assert not RobotAccount.objects.exists()


def test_a_superuser_may_grant_anything(client, personas) -> None:
    client.force_login(personas.root)
    response = create(client, personas.team_b_admins, grants="* delete")
    assert response.status_code == 200
    assert RobotAccount.objects.get().grants.get().pattern == "*"


@pytest.mark.parametrize("name", ["CI", "-ci", "ci-", "c i", "robot$ci", "a" * 101])
def test_bad_names_are_refused(client, personas, name) -> None:
    client.force_login(personas.admin_a)
    assert create(client, personas.team_a_admins, name=name).status_code == 400
    assert not RobotAccount.objects.exists()


def test_names_are_unique(client, personas) -> None:
    client.force_login(personas.admin_a)
    assert create(client, personas.team_a_admins).status_code == 200
    response = create(client, personas.team_a_admins)
    assert response.status_code == 400
    assert "exists already" in response.content.decode()
    assert RobotAccount.objects.count() == 1


def test_admins_revoke_their_teams_robots_and_no_others(client, personas) -> None:
    client.force_login(personas.admin_b)
    create(client, personas.team_b_admins, name="b-bot", grants="team-b/* pull")
    b_bot = RobotAccount.objects.get(name="b-bot")

    client.force_login(personas.admin_a)
    create(client, personas.team_a_admins, name="a-bot")
    a_bot = RobotAccount.objects.get(name="a-bot")
    assert "b-bot" not in client.get(URL).content.decode()
    assert client.post(f"/profile/robots/{b_bot.pk}/revoke").status_code == 404
    assert client.get(f"/profile/robots/{a_bot.pk}/revoke").status_code == 405

    assert client.post(f"/profile/robots/{a_bot.pk}/revoke").status_code == 302
    a_bot.refresh_from_db()
    b_bot.refresh_from_db()
    assert a_bot.revoked_at is not None
    assert b_bot.revoked_at is None
    entry = AuditEntry.objects.get(action="robot_revoked")
    assert entry.actor == personas.admin_a
    assert entry.details == {"robot": "robot$a-bot", "team": "team-a-admins"}


def test_an_admin_by_a_second_grant_administers_only_that_pattern(client, personas) -> None:
    Grant.objects.create(team=personas.team_b_admins, pattern="shared/tools", level=Level.ADMIN)
    client.force_login(personas.admin_b)
    assert create(client, personas.team_b_admins, grants="shared/tools push").status_code == 200
    response = create(client, personas.team_b_admins, name="ci2", grants="shared/* push")
    assert response.status_code == 400


def test_what_an_admin_holds_in_another_team_is_not_for_this_teams_robots(client, personas) -> None:
    # admin_b administers team-a/* too, but through team-a-admins: a team-b robot is capped by
    # team-b's grants, so team-a/* would give it nothing.
    personas.team_a_admins.members.add(personas.admin_b)
    client.force_login(personas.admin_b)
    response = create(client, personas.team_b_admins, grants="team-a/x pull")
    assert response.status_code == 400
    assert "Not within what you administer in team-b-admins: team-a/x" in response.content.decode()
    assert "You administer: team-b/*." in response.content.decode()
    assert create(client, personas.team_a_admins, grants="team-a/x pull").status_code == 200
