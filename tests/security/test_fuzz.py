"""Fuzz every URL and query parameter (issue 11): no input makes a 500.

The URLs are the permission matrix's rows (``tests/teams/matrix.py``: every URL pattern of the
product has one) plus the admin's changelists, change pages and autocomplete, and the account
pages. Each is sent as several personas with hostile text in turn in each path segment, each
query parameter (the row's own and the ones the views read) and each form field:

- NUL, a lone surrogate (``%ED%A0%80``), an overlong UTF-8 sequence (``%C0%AF``) and bytes
  that are not UTF-8 at all: refused with a 400 at one place
  (``registryui.core.middleware.RejectUnsafeInputMiddleware``), so this is asserted exactly;
- ``%2F``, ``..``, very long text, a stray ``%``, markup: whatever the view says (400, 404,
  a page), never a 500.

A real registry holds a few images (``Seeder``), synced, so that requests which get past
validation reach real code paths; mutations with hostile input are refused before they write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client, override_settings

from registryui.catalog.models import Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer
from tests.api.matrix import ROWS as API_ROWS
from tests.personas import Persona, make_personas
from tests.teams.matrix import DIGESTS, ROWS, Row

pytestmark = pytest.mark.django_db

#: Refused at one place with a 400, wherever they appear.
UNSAFE = {
    "nul": "%00",
    "nul-inside": "a%00b",
    "lone-surrogate": "%ED%A0%80",
    "overlong": "%C0%AF",
    "not-utf8": "%FF%FE",
}
#: Anything may answer these but a 500.
ODD = {
    "encoded-slash": "a%2Fb",
    "dot-dot": "..",
    "dots-up": "..%2F..%2Fetc%2Fpasswd",
    "long": "a" * 5000,
    "stray-percent": "%",
    "markup": "%3Cscript%3Ex%3C%2Fscript%3E",
    "minus": "-1",
    "huge-number": "9" * 40,
}
PAYLOADS = {**UNSAFE, **ODD}

#: Query parameters the views read, tried on every GET row besides the row's own.
COMMON_PARAMS = ("q", "page", "sort", "namespace", "tag", "next")
PERSONAS = ("anonymous", "a_deleter", "b_admin", "superuser")


@dataclass
class FuzzWorld:
    registry: RegistryProcess
    personas: dict[str, Persona]
    values: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator[FuzzWorld]:
    """A registry with the repositories the matrix rows name, synced, plus the rows' objects;
    written in one transaction rolled back after the module."""
    from registryui.cleanup.models import ActionResult, RetentionPolicy
    from registryui.teams.models import Team
    from registryui.tokens.models import (
        PAT_PREFIX,
        ROBOT_PREFIX,
        PersonalAccessToken,
        RobotAccount,
        RobotGrant,
    )

    process = RegistryProcess(tmp_path_factory.mktemp("fuzz") / "registry").start()
    try:
        seeder = Seeder(RegistryClient(process.url, retries=0))
        for reference in (*DIGESTS.values(), "secret/vault:latest", "team-a/api:worker-copy"):
            name, _, tag = reference.rpartition(":")
            seeder.put(name, tag)
        seeder.put("platform/tools/builder", "2026.11")
        registry = override_settings(
            REGISTRY_URL=process.url,
            REGISTRY_PUBLIC_HOST="registry.example.com",
            REGISTRY_RETRIES=0,
        )
        with django_db_blocker.unblock(), registry:
            atomic = transaction.atomic()
            atomic.__enter__()
            try:
                assert Syncer(get_client(), concurrency=4).run().ok
                personas = make_personas()
                values = {
                    key: Tag.objects.get(
                        repository__name=ref.rpartition(":")[0], name=ref.rpartition(":")[2]
                    ).manifest.digest
                    for key, ref in DIGESTS.items()
                }
                team_b = Team.objects.get(name="team-b")
                values["team_b"] = str(team_b.pk)
                policy = RetentionPolicy.objects.create(
                    name="fuzz", repository_pattern="*", keep_last=1, enabled=True
                )
                values["policy"] = str(policy.pk)
                values["result"] = str(
                    ActionResult.objects.create(
                        user=personas["a_deleter"].user,
                        kind=ActionResult.Kind.RETAG,
                        repository="team-a/api",
                        title="fuzz",
                        payload={
                            "digest": values["api_14"],
                            "new_tag": "fuzz",
                            "source": "team-a/api:1.4",
                            "status": "done",
                            "message": "Tagged.",
                            "old_digest": "",
                        },
                    ).pk
                )
                token = PersonalAccessToken(
                    user=personas["a_deleter"].user, name="fuzz", max_level=10
                )
                token.set_secret(PAT_PREFIX)
                token.save()
                values["token"] = str(token.pk)
                robot = RobotAccount(team=team_b, name="fuzz", created_by=personas["b_admin"].user)
                robot.set_secret(ROBOT_PREFIX)
                robot.save()
                RobotGrant.objects.create(robot=robot, pattern="team-b/*", level=10)
                values["robot"] = str(robot.pk)
                yield FuzzWorld(process, personas, values)
            finally:
                transaction.set_rollback(True)
                atomic.__exit__(None, None, None)
    finally:
        process.stop()


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with its query string, percent-encoded as sent
    data: dict | None = None
    content_type: str | None = None
    unsafe: bool = False
    htmx: bool = False

    def __str__(self) -> str:
        shown = self.path if len(self.path) < 160 else self.path[:157] + "..."
        return f"{self.method} {shown}" + (f" {self.data}" if self.data else "")


def _payloads(everywhere: bool) -> Iterator[tuple[str, bool]]:
    """The payloads for one position: the odd ones always; the unsafe ones (all refused by
    one middleware) in one position of each kind per URL, which is all the proof needed."""
    for name, payload in PAYLOADS.items():
        if everywhere or name not in UNSAFE:
            yield payload, name in UNSAFE


def _segments_variants(path: str) -> Iterator[tuple[str, bool]]:
    """The path with each segment in turn replaced by each payload."""
    base, _, query = path.partition("?")
    parts = base.split("/")
    last = max(i for i, part in enumerate(parts) if part) if base.strip("/") else 0
    for index in range(1, len(parts)):
        if not parts[index]:
            continue
        for payload, unsafe in _payloads(everywhere=index == last):
            changed = [*parts[:index], payload, *parts[index + 1 :]]
            yield "/".join(changed) + (f"?{query}" if query else ""), unsafe


def _query_variants(path: str, extra: tuple[str, ...]) -> Iterator[tuple[str, bool]]:
    base, _, query = path.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    for position, key in enumerate(dict.fromkeys([*params, *extra])):
        for payload, unsafe in _payloads(everywhere=position == 0):
            others = "&".join(f"{k}={v}" for k, v in params.items() if k != key)
            yield f"{base}?{others + '&' if others else ''}{key}={payload}", unsafe
    # A hostile parameter name too.
    yield f"{base}?{query + '&' if query else ''}%00=1", True


def requests_of(row: Row, values: dict[str, str], seen_bases: set[str]) -> Iterator[Request]:
    path = row.path.format(**values)
    data = {k: v.format(**values) if isinstance(v, str) else v for k, v in row.data.items()}
    base = path.partition("?")[0]
    if row.method == "GET":
        # The common parameters once per page, the row's own for each row.
        extra = COMMON_PARAMS if base not in seen_bases else ()
        seen_bases.add(base)
        for variant, unsafe in [*_segments_variants(path), *_query_variants(path, extra)]:
            yield Request("GET", variant, unsafe=unsafe, htmx=row.htmx)
        return
    if row.content_type:  # a JSON body: hostile text inside JSON strings is the view's to read
        for payload in PAYLOADS.values():
            body = json.dumps({"events": [{"id": payload, "action": payload}]})
            yield Request("POST", path, {"body": body}, row.content_type)
        return
    for variant, unsafe in _segments_variants(path):
        yield Request("POST", variant, data, unsafe=unsafe)
    for position, field in enumerate(data):
        for payload, unsafe in _payloads(everywhere=position == 0):
            # Form bodies are sent urlencoded, as browsers do, with the payload as typed.
            fields = {**{k: str(v) for k, v in data.items()}, field: payload}
            body = "&".join(f"{k}={v}" for k, v in fields.items())
            yield Request("POST", path, {"body": body}, "form", unsafe=unsafe)


def admin_requests() -> Iterator[Request]:
    """Changelists (search, ordering, page, filters), change pages, the autocomplete."""
    for model in admin.site._registry:
        meta = model._meta
        changelist = f"/admin/{meta.app_label}/{meta.model_name}/"
        for position, key in enumerate(("q", "o", "p", "e", f"{meta.pk.name}__exact")):
            for payload, unsafe in _payloads(everywhere=position == 0):
                yield Request("GET", f"{changelist}?{key}={payload}", unsafe=unsafe)
        for payload, unsafe in _payloads(everywhere=True):
            yield Request("GET", f"{changelist}{payload}/change/", unsafe=unsafe)
    sources = [
        ("teams", "team_members", "user"),
        ("teams", "team_members", "team"),
        ("teams", "grant", "team"),
    ]
    for app_label, model_name, field_name in sources:
        for position, key in enumerate(("term", "app_label", "model_name", "field_name", "page")):
            for payload, unsafe in _payloads(everywhere=position == 0):
                params = {
                    "term": "a",
                    "app_label": app_label,
                    "model_name": model_name,
                    "field_name": field_name,
                    "page": "1",
                    key: payload,
                }
                query = "&".join(f"{k}={v}" for k, v in params.items())
                yield Request("GET", f"/admin/autocomplete/?{query}", unsafe=unsafe)
    for payload, unsafe in _payloads(everywhere=True):
        yield Request("GET", f"/admin/r/{payload}/1/", unsafe=unsafe)
        yield Request("GET", f"/admin/r/1/{payload}/", unsafe=unsafe)
        yield Request(
            "GET",
            f"/admin/teams/team/effective-permissions/?user={payload}&repository={payload}",
            unsafe=unsafe,
        )
        yield Request(
            "GET", f"/admin/teams/team/pattern-preview/?grants-0-pattern={payload}", unsafe=unsafe
        )
        yield Request("GET", f"/accounts/login/?next={payload}", unsafe=unsafe)
        yield Request("GET", f"/accounts/{payload}/", unsafe=unsafe)
        body = f"username={payload}&password={payload}"
        yield Request("POST", "/accounts/login/", {"body": body}, "form", unsafe=unsafe)


#: Query parameters the API reads, tried on every API GET row besides the row's own.
API_PARAMS = ("q", "sort", "namespace", "cursor", "limit", "repository", "action", "digest")


def api_requests(values: dict[str, str]) -> Iterator[Request]:
    """The REST API's rows (tests/api/matrix.py): hostile text in each path segment and query
    parameter, and inside each JSON string of a body (the API reads JSON, not forms)."""
    for row in API_ROWS:
        path = "/api/v1" + row.path.format(**values)
        if row.method in ("GET", "DELETE"):
            variants = [*_segments_variants(path)]
            if row.method == "GET":
                variants += [*_query_variants(path, API_PARAMS)]
            for variant, unsafe in variants:
                yield Request(row.method, variant, unsafe=unsafe)
            continue
        body = json.dumps(row.body).replace("{api_14}", values["api_14"])
        for variant, unsafe in _segments_variants(path):
            yield Request("POST", variant, {"body": body}, "application/json", unsafe=unsafe)
        for payload in PAYLOADS.values():
            for key in row.body:
                hostile = json.dumps({**json.loads(body), key: payload})
                yield Request("POST", path, {"body": hostile}, "application/json")
        yield Request("POST", path, {"body": "{not json"}, "application/json")
        yield Request("POST", path, {"body": "[]"}, "application/json")


def send(client: Client, request: Request):
    headers = {"HX-Request": "true"} if request.htmx else {}
    if request.method == "GET":
        return client.get(request.path, headers=headers)
    if request.method == "DELETE":
        return client.delete(request.path, headers=headers)
    if request.content_type == "form":
        return client.post(
            request.path,
            request.data["body"],
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
    if request.content_type:
        return client.post(
            request.path, request.data["body"], content_type=request.content_type, headers=headers
        )
    return client.post(request.path, request.data, headers=headers)


def all_requests(values: dict[str, str]) -> list[Request]:
    found, seen_bases = {}, set()
    for row in ROWS:
        for request in requests_of(row, values, seen_bases):
            found.setdefault((request.method, request.path, str(request.data)), request)
    for request in api_requests(values):
        found.setdefault((request.method, request.path, str(request.data)), request)
    for request in admin_requests():
        found.setdefault((request.method, request.path, str(request.data)), request)
    return list(found.values())


@pytest.fixture
def quiet_warnings() -> Iterator[None]:
    """Thousands of 400s and 404s are the point here: log only errors (500s) while fuzzing."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_input_makes_a_500(world, persona, settings, quiet_warnings):
    settings.REGISTRY_EVENTS_TOKEN = "fuzz-events-secret"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = world.personas[persona].client(raise_request_exception=False)
    requests = all_requests(world.values)
    errors, unsafe_passed = [], []
    for request in requests:
        response = send(client, request)
        if response.status_code >= 500:
            errors.append(f"{response.status_code} {request}")
        elif request.unsafe and response.status_code != 400:
            unsafe_passed.append(f"{response.status_code} {request}")
        if "/accounts/login/" in request.path and request.method == "POST":
            # A hostile login must not log this client out of its persona.
            client = world.personas[persona].client(raise_request_exception=False)
    print(f"{persona}: {len(requests)} requests")
    assert not errors, "\n".join(errors[:40])
    assert not unsafe_passed, "\n".join(unsafe_passed[:40])
    # The registry still has every image: nothing hostile wrote to it.
    tags = RegistryClient(world.registry.url, retries=0).list_tags("team-a/api")
    assert {"1.4", "1.5"} <= set(tags), tags
