"""Credentials and calls for the API tests."""

from __future__ import annotations

import json

from django.test import Client

from registryui.teams.models import Level, Team
from registryui.tokens.models import (
    PAT_PREFIX,
    ROBOT_PREFIX,
    PersonalAccessToken,
    RobotAccount,
    RobotGrant,
)

API = "/api/v1"
PROBLEM = "application/problem+json"


def personal_token(user, level: int = Level.DELETE, name: str = "api-test") -> str:
    token = PersonalAccessToken(user=user, name=name, max_level=level)
    secret = token.set_secret(PAT_PREFIX)
    token.save()
    return secret


def robot_secret(team: str, grants: list[tuple[str, int]], name: str = "ci") -> str:
    robot = RobotAccount(team=Team.objects.get(name=team), name=name)
    secret = robot.set_secret(ROBOT_PREFIX)
    robot.save()
    for pattern, level in grants:
        RobotGrant.objects.create(robot=robot, pattern=pattern, level=level)
    return secret


class Bearer:
    """A test client that sends ``Authorization: Bearer <secret>`` on every call."""

    def __init__(self, secret: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **params):
        return self.client.get(f"{API}{path}", params, headers=self.headers)

    def delete(self, path: str, **headers):
        return self.client.delete(f"{API}{path}", headers={**self.headers, **headers})

    def post(self, path: str, body, **headers):
        return self.client.post(
            f"{API}{path}",
            json.dumps(body),
            content_type="application/json",
            headers={**self.headers, **headers},
        )


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:800]
    assert response["Content-Type"].startswith(PROBLEM), response["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:registryui:problem:{code}"
    assert body["title"] and body["detail"]
    return body
