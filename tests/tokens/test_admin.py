"""Personal access tokens and robot accounts in the Django admin: listed and revocable."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registryui.core.models import AuditEntry
from registryui.teams.models import Level
from registryui.tokens.models import (
    PAT_PREFIX,
    ROBOT_PREFIX,
    PersonalAccessToken,
    RobotAccount,
    RobotGrant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def credentials(personas):
    token = PersonalAccessToken(user=personas.pusher, name="laptop")
    token.set_secret(PAT_PREFIX)
    token.save()
    robot = RobotAccount(team=personas.team_a_admins, name="ci")
    robot.set_secret(ROBOT_PREFIX)
    robot.save()
    RobotGrant.objects.create(robot=robot, pattern="team-a/ci/*", level=Level.PUSH)
    return token, robot


def test_the_admin_lists_them_without_secrets(client, personas, credentials) -> None:
    token, robot = credentials
    client.force_login(personas.root)
    tokens_page = client.get("/admin/tokens/personalaccesstoken/").content.decode()
    assert token.prefix in tokens_page
    assert token.secret_hash not in tokens_page
    robots_page = client.get("/admin/tokens/robotaccount/").content.decode()
    assert "robot$ci" in robots_page
    detail = client.get(f"/admin/tokens/robotaccount/{robot.pk}/change/").content.decode()
    assert "team-a/ci/*" in detail
    assert robot.secret_hash not in detail
    # New secrets are made where they can be shown once, not in the admin.
    assert client.get("/admin/tokens/personalaccesstoken/add/").status_code == 403
    assert client.get("/admin/tokens/robotaccount/add/").status_code == 403


@pytest.mark.parametrize(
    ("model", "action"), [("personalaccesstoken", "pat_revoked"), ("robotaccount", "robot_revoked")]
)
def test_the_admin_revokes_and_audits(client, personas, credentials, model, action) -> None:
    token, robot = credentials
    obj = token if model == "personalaccesstoken" else robot
    client.force_login(personas.root)
    response = client.post(
        f"/admin/tokens/{model}/",
        {"action": "revoke", "_selected_action": [obj.pk]},
    )
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.revoked_at is not None
    entry = AuditEntry.objects.get(action=action)
    assert entry.actor == personas.root
    assert entry.via == "admin"
    # Revoking again changes nothing and records nothing.
    client.post(f"/admin/tokens/{model}/", {"action": "revoke", "_selected_action": [obj.pk]})
    assert AuditEntry.objects.filter(action=action).count() == 1


@pytest.mark.parametrize("path", ["personalaccesstoken", "robotaccount"])
def test_the_lists_take_the_same_queries_however_many_rows(client, personas, path) -> None:
    client.force_login(personas.root)
    counts = []
    for batch in range(2):
        for n in range(5 * batch, 5 * batch + 5):
            token = PersonalAccessToken(user=personas.pusher, name=f"t{n}")
            token.set_secret(PAT_PREFIX)
            token.save()
            robot = RobotAccount(
                team=personas.team_a_admins, name=f"ci{n}", created_by=personas.root
            )
            robot.set_secret(ROBOT_PREFIX)
            robot.save()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/admin/tokens/{path}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
