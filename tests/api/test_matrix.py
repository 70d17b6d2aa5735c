"""The permission matrix of tests/teams, extended to the API: every endpoint and persona
against the sample registry, synced.

The outcome follows from the same hand-written levels (``tests/teams/matrix.py``): no
credential → 401 (reads pass for the ``public`` persona, anonymous viewing being on), hidden
→ 404, visible but below the needed level → 403, else the row's status. Lists hold exactly
the visible repositories, no body names a repository the persona may not see, and refused
mutations never reach the registry. A test fails when an API path has no row.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from registryui.api.app import api
from registryui.catalog.models import Tag
from registryui.cleanup.models import RetentionPolicy
from tests.personas import PERSONA_NAMES
from tests.support import WRITES
from tests.teams.matrix import DIGESTS, REPOSITORIES, visible

from .matrix import ROWS, Row
from .support import API, PROBLEM, personal_token

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def values(world, django_db_blocker) -> dict[str, str]:
    with django_db_blocker.unblock():
        out = {}
        for key, reference in DIGESTS.items():
            name, _, tag = reference.rpartition(":")
            out[key] = Tag.objects.get(repository__name=name, name=tag).manifest.digest
        policy = RetentionPolicy.objects.create(name="api-matrix", repository_pattern="*")
        out["policy"] = str(policy.pk)
    return out


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def send(row: Row, client, values):
    path = API + _fill(row.path, values)
    if row.method == "GET":
        return client.get(path)
    if row.method == "DELETE":
        return client.delete(path)
    body = json.dumps(row.body).replace("{api_14}", values["api_14"])
    return client.post(path, body, content_type="application/json")


def names_in(body: str, names) -> set[str]:
    return {n for n in names if f'"{n}"' in body or f"/r/{n}" in body or f'"{n}:' in body}


#: (row, persona, how the persona authenticates): the session, and for logged-in personas a
#: personal access token at the full registry level too (its ceiling changes none of these).
CASES = [
    (row, persona, auth)
    for row in ROWS
    for persona in PERSONA_NAMES
    for auth in (("session",) if persona in ("anonymous", "public") else ("session", "token"))
]


@pytest.mark.parametrize(
    ("row", "persona", "auth"), CASES, ids=[f"{r.id} as {p} by {a}" for r, p, a in CASES]
)
def test_api_permission_matrix(row: Row, persona: str, auth: str, world, values):
    registry = world.registry.process
    client = world.personas[persona].client()
    if auth == "token":
        client = Client(
            headers={"Authorization": f"Bearer {personal_token(world.personas[persona].user)}"}
        )
    mark = registry.mark()

    response = send(row, client, values)

    expected = row.expect(persona)
    body = response.content.decode()
    where = f"{row.id} as {persona}"
    assert response.status_code == expected, f"{where}: {response.status_code}\n{body[:800]}"
    if expected >= 400:
        assert response["Content-Type"].startswith(PROBLEM), where
        assert response.json()["status"] == expected
    hidden = REPOSITORIES - visible(persona)
    asked = _fill(row.path, values)
    assert {n for n in names_in(body, hidden) if n not in asked} == set(), where
    if row.lists is not None and expected == 200:
        shown = {item["name"] for item in response.json()["items"]}
        wanted = row.lists & visible(persona)
        if "namespace=team-a" in row.path:
            wanted = {n for n in wanted if n.startswith("team-a/")}
        assert shown == wanted, where
    since = registry.requests_since(mark)
    if expected >= 400 and row.method != "GET":
        assert [line for line in since if line.method in WRITES] == [], where
    elif row.writes:
        assert any(line.method in WRITES for line in since), f"{where}: nothing written"
        world.registry.restore_if_written(since)


def test_every_api_path_has_a_row():
    documented = {
        (method.upper(), path.removeprefix(API))
        for path, operations in api.get_openapi_schema(path_prefix=API)["paths"].items()
        for method in operations
    }
    covered = set()
    for row in ROWS:
        path = row.path.split("?")[0]
        for template, _ in [(p, m) for m, p in documented]:
            if _matches(template, path):
                covered.add((row.method, template))
    assert documented - covered == set()


def _matches(template: str, path: str) -> bool:

    pattern = re.sub(
        r"\{[a-z_]+\}", ".+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    )
    return re.fullmatch(pattern, path) is not None
