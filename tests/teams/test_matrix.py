"""The permission matrix (rows in tests/teams/matrix.py) against a real registry, synced.

For each row and persona: the status (or the login redirect), for lists the exact set of
repositories shown, for every response that it names no repository the persona may not see,
and for refused mutations that nothing reached the registry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from registryui.catalog.models import Repository, SyncRun, SyncRunError, Tag
from registryui.lib.reference import namespace_of
from registryui.teams.models import Team
from tests.support import WRITES

from .matrix import (
    ACTION_LEVELS,
    DIGESTS,
    LOGIN,
    REPOSITORIES,
    ROWS,
    Row,
    cases,
    level,
    visible,
)

pytestmark = pytest.mark.django_db

#: URL prefixes that are not the product's own pages: Django's admin and auth views, and the
#: REST API, whose matrix is tests/api/test_matrix.py (with its own check that every path has
#: a row).
EXCLUDED_PREFIXES = ("admin/", "accounts/", "api/")
REFUSED = {LOGIN, 400, 403, 404, 405}


@pytest.fixture(scope="module")
def values(world, django_db_blocker) -> dict[str, str]:
    """What the rows' {placeholders} stand for: digests and objects of other apps.

    Made inside the module's transaction (see the ``world`` fixture), so undone at the end.
    """
    from registryui.cleanup.models import ActionResult, RetentionPolicy
    from registryui.tokens.models import (
        PAT_PREFIX,
        ROBOT_PREFIX,
        PersonalAccessToken,
        RobotAccount,
        RobotGrant,
    )

    with django_db_blocker.unblock():
        out = {}
        for key, reference in DIGESTS.items():
            name, _, tag = reference.rpartition(":")
            out[key] = Tag.objects.get(repository__name=name, name=tag).manifest.digest
        personas = world.personas
        team_b = Team.objects.get(name="team-b")
        out["team_b"] = str(team_b.pk)
        policy = RetentionPolicy.objects.create(
            name="matrix", repository_pattern="*", keep_last=1, enabled=True
        )
        out["policy"] = str(policy.pk)
        result = ActionResult.objects.create(
            user=personas["a_deleter"].user,
            kind=ActionResult.Kind.RETAG,
            repository="team-a/api",
            title="Tag matrix",
            payload={
                "digest": out["api_14"],
                "new_tag": "matrix",
                "source": "team-a/api:1.4",
                "status": "done",
                "message": "Tagged.",
                "old_digest": "",
            },
        )
        out["result"] = str(result.pk)
        token = PersonalAccessToken(user=personas["a_viewer"].user, name="matrix", max_level=10)
        token.set_secret(PAT_PREFIX)
        token.save()
        out["token"] = str(token.pk)
        robot = RobotAccount(team=team_b, name="matrix", created_by=personas["b_admin"].user)
        robot.set_secret(ROBOT_PREFIX)
        robot.save()
        RobotGrant.objects.create(robot=robot, pattern="team-b/*", level=10)
        out["robot"] = str(robot.pk)
        # A later full sync that failed on the canary: pages that report sync failures must
        # name it only to those who may see it.
        run = SyncRun.objects.create(
            status=SyncRun.Status.FAILED,
            finished_at=timezone.now(),
            repositories_seen=len(REPOSITORIES),
            repositories_synced=len(REPOSITORIES) - 1,
            repositories_failed=1,
        )
        SyncRunError.objects.create(
            run=run, repository="secret/vault", code="UNAVAILABLE", message="503 from the registry"
        )
        Repository.objects.filter(name="secret/vault").update(
            last_sync_error="503 from the registry", last_sync_error_at=timezone.now()
        )
    return out


# -- the matrix -------------------------------------------------------------------------------


def _fill(value, values: dict[str, str]):
    return value.format(**values) if isinstance(value, str) else value


def send(row: Row, client, values: dict[str, str]):
    path = _fill(row.path, values)
    headers = dict(row.headers)
    if row.htmx:
        headers["HX-Request"] = "true"
    if row.method == "GET":
        return client.get(path, headers=headers)
    data = {key: _fill(value, values) for key, value in row.data.items()}
    if row.content_type:
        return client.post(path, json.dumps(data), content_type=row.content_type, headers=headers)
    return client.post(path, data, headers=headers)


def is_login_redirect(response) -> bool:
    if response.status_code == 302:
        return response["Location"].startswith("/accounts/login/?next=")
    return response.status_code == 200 and response.get("HX-Redirect", "").startswith(
        "/accounts/login/?next="
    )


def name_of(reference: str) -> str:
    """``team-a/api`` of ``team-a/api``, ``team-a/api:1.4`` or ``team-a/api@sha256:…``."""
    name = reference.split("/-/")[0].split("@")[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":")[0]
    return f"{head}/{last}" if head else last


def repositories_linked(body: str) -> set[str]:
    """The repositories a page links to (``/r/NAME``, ``/r/NAME:TAG``, ``/r/NAME@DIGEST``)."""
    return {name_of(target) for target in re.findall(r'href="/r/([^"?#]+)', body)}


ACTION_LINK = re.compile(
    r'(?:href|action|formaction|hx-get|hx-post|hx-put|hx-delete)="/r/([^"?#]+?)/-/([a-z-]+)'
)


def forbidden_actions(body: str, persona: str) -> list[str]:
    """Links and forms for actions the persona may not take (a button that must not show)."""
    found = []
    for reference, action in ACTION_LINK.findall(body):
        assert action in ACTION_LEVELS, f"add /-/{action} to ACTION_LEVELS in matrix.py"
        if level(persona, name_of(reference)) < ACTION_LEVELS[action]:
            found.append(f"{reference}/-/{action}")
    return found


def _static_snippets() -> list[str]:
    """Fixed text of the templates that names a sample repository ("For example
    <code>/r/team-a/api</code>"): a hint on the page, not data. Each snippet runs from the
    name to the nearest template tag or line end (at most 30 characters each side), so
    only the very same literal text is ever discounted."""
    from django.conf import settings as django_settings

    roots = [Path(d) for t in django_settings.TEMPLATES for d in t.get("DIRS", [])]
    roots += [Path(app.path) / "templates" for app in apps.get_app_configs()]
    snippets: set[str] = set()
    for root in roots:
        for path in root.rglob("*.html") if root.is_dir() else []:
            source = path.read_text(errors="replace")
            for name in REPOSITORIES:
                for match in re.finditer(re.escape(name), source):
                    line_start = source.rfind("\n", 0, match.start()) + 1
                    start = max(
                        line_start,
                        source.rfind("}", 0, match.start()) + 1,
                        source.rfind("%", 0, match.start()) + 1,
                        match.start() - 30,
                    )
                    ends = [source.find(c, match.end()) for c in "\n{"]
                    end = min([e for e in ends if e >= 0] + [match.end() + 30])
                    snippets.add(source[start:end])
    return sorted(snippets, key=len, reverse=True)


STATIC_SNIPPETS = _static_snippets()


def _static_spans(body: str) -> list[tuple[int, int]]:
    spans = []
    for snippet in STATIC_SNIPPETS:
        start = body.find(snippet)
        while start >= 0:
            spans.append((start, start + len(snippet)))
            start = body.find(snippet, start + 1)
    return spans


def _named(body: str, name: str, spans: list[tuple[int, int]]) -> bool:
    """True when ``name`` occurs in the body outside the templates' fixed text."""
    for match in re.finditer(re.escape(name), body):
        if not any(s <= match.start() and match.end() <= e for s, e in spans):
            return True
    return False


def leaks(body: str, persona: str, asked: str) -> list[str]:
    """Hidden repositories, and namespaces only hidden ones are in, that the body names
    although the request did not."""
    spans = _static_spans(body)
    hidden = REPOSITORIES - visible(persona)
    found = [n for n in sorted(hidden) if n not in asked and _named(body, n, spans)]
    shown_namespaces = {namespace_of(n) for n in visible(persona)}
    for namespace in sorted({namespace_of(n) for n in hidden} - shown_namespaces - {""}):
        if namespace in asked:
            continue
        pattern = rf'namespace={namespace}\b|value="{namespace}"|>\s*{namespace}\s*<'
        if re.search(pattern, body):
            found.append(f"namespace {namespace}")
    return found


def registry_tags(registry, name: str) -> list[str]:
    response = requests.get(f"{registry.url}/v2/{name}/tags/list", timeout=10)
    response.raise_for_status()
    return sorted(response.json()["tags"] or [])


@pytest.fixture(scope="module")
def original_tags(world) -> dict[str, list[str]]:
    return {name: registry_tags(world.registry.process, name) for name in REPOSITORIES}


@pytest.mark.parametrize(
    ("row", "persona"), cases(), ids=[f"{row.id} as {persona}" for row, persona in cases()]
)
def test_permission_matrix(row: Row, persona: str, world, values, original_tags, settings, request):
    if persona in row.xfail:
        request.applymarker(pytest.mark.xfail(reason=row.xfail[persona], strict=True))
    for name, value in row.settings.items():
        setattr(settings, name, value)
    registry = world.registry.process
    client = world.personas[persona].client()
    mark = registry.mark() if row.guard else 0

    response = send(row, client, values)

    expected = row.expect[persona]
    body = response.content.decode(errors="replace")
    where = f"{row.id} as {persona}: got {response.status_code}"
    if expected == LOGIN:
        assert is_login_redirect(response), where
    else:
        assert response.status_code == expected, f"{where}, expected {expected}\n{body[:1500]}"

    asked = _fill(row.path, values) + json.dumps({k: _fill(v, values) for k, v in row.data.items()})
    assert leaks(body, persona, asked) == [], where
    assert forbidden_actions(body, persona) == [], where

    if row.lists is not None and response.status_code == 200 and expected != LOGIN:
        shown = repositories_linked(body)
        assert shown == set(row.lists & visible(persona)), where
        count = re.search(r'id="repository-count">\s*([\d,]+) repositor', body)
        if count:
            assert int(count.group(1).replace(",", "")) == len(shown), where

    if row.htmx and response.status_code == 200 and expected != LOGIN:
        assert "<html" not in body, f"{where}: an htmx request got a whole page"

    if row.guard:
        since = registry.requests_since(mark)
        if expected in REFUSED:
            assert since == [], f"{where}: a refused request reached the registry: {since}"
            if row.method == "POST":
                for name in REPOSITORIES:
                    assert registry_tags(registry, name) == original_tags[name], where
        else:
            if row.writes:
                assert any(line.method in WRITES for line in since), f"{where}: nothing written"
            world.registry.restore_if_written(since)


@pytest.mark.parametrize(
    "row", [r for r in ROWS if r.method == "POST" and r.csrf], ids=lambda row: row.id
)
def test_mutations_need_a_csrf_token(row: Row, world, values, settings):
    for name, value in row.settings.items():
        setattr(settings, name, value)
    registry = world.registry.process
    client = world.personas["superuser"].client(enforce_csrf_checks=True)
    mark = registry.mark()
    response = send(row, client, values)
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert registry.requests_since(mark) == []


# -- every URL has rows -----------------------------------------------------------------------


def _join(route1: str, route2: str) -> str:
    # As django.urls.resolvers.URLResolver._join_route builds ResolverMatch.route.
    if not route1:
        return route2
    return route1 + route2.removeprefix("^")


def product_routes(patterns=None, prefix: str = "") -> set[str]:
    routes: set[str] = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = _join(prefix, str(pattern.pattern))
        if route.startswith(EXCLUDED_PREFIXES):
            continue
        if isinstance(pattern, URLResolver):
            routes |= product_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.add(route)
    return routes


class _Dummy(dict):
    def __missing__(self, key: str) -> str:
        # Stored results are keyed by UUID (an unguessable id); everything else by number.
        return "00000000-0000-4000-8000-000000000001" if key == "result" else "1"


def test_every_url_pattern_has_a_row_in_the_matrix():
    covered = set()
    for row in ROWS:
        path = urlsplit(row.path.format_map(_Dummy())).path
        covered.add(resolve(path).route)
    missing = product_routes() - covered
    assert not missing, (
        f"URL patterns without a row in tests/teams/matrix.py: {sorted(missing)}; add one "
        "line per URL and action (see docs/DEVELOPMENT.md, 'Permission matrix')."
    )


def test_the_coverage_check_sees_every_app():
    """A guard on the guard: the routes it walks include each app's own."""
    routes = product_routes()
    assert "" in routes and "profile/" in routes
    assert not any(r.startswith(EXCLUDED_PREFIXES) for r in routes)


# -- hidden and missing look the same -----------------------------------------------------------

LOOKALIKES = [
    ("/r/{name}", "team-b/worker", "team-b/nothing"),
    ("/r/{name}:v1", "team-b/worker", "team-b/nothing"),
    ("/r/{name}@{worker_v1}", "team-b/worker", "team-b/nothing"),
    ("/r/{name}:v1/-/delete", "team-b/worker", "team-b/nothing"),
    ("/r/{name}/-/bulk-delete?tag=v1", "team-b/worker", "team-b/nothing"),
    ("/r/{name}:latest/-/retag", "secret/vault", "secret/nothing"),
    ("/r/{name}@{hello}", "secret/vault", "secret/nothing"),
]


@pytest.mark.parametrize(("template", "hidden", "missing"), LOOKALIKES)
@pytest.mark.parametrize("persona", ["a_viewer", "no_team", "public"])
def test_a_hidden_repository_looks_exactly_like_a_missing_one(
    template, hidden, missing, persona, world, values
):
    client = world.personas[persona].client()
    pages = []
    for name in (hidden, missing):
        response = client.get(template.format(name=name, **values))
        body = response.content.decode().replace(name, "NAME")
        # CSRF tokens are masked afresh on every response.
        body = re.sub(r"[A-Za-z0-9]{64}", "TOKEN", body)
        pages.append((response.status_code, body))
    assert pages[0][0] in (404, 302)
    assert pages[0] == pages[1]


# -- the checks themselves can fail -------------------------------------------------------------


def test_the_page_checks_catch_what_they_are_for():
    body = (
        '<a href="/r/team-b/worker:v1">v1</a> <a href="/r/team-a/api@sha256:ab">x</a>'
        '<form action="/r/team-a/api:1.4/-/delete"></form> <option value="secret">'
    )
    assert repositories_linked(body) == {"team-b/worker", "team-a/api"}
    assert forbidden_actions(body, "a_viewer") == ["team-a/api:1.4/-/delete"]
    assert forbidden_actions(body, "a_deleter") == []
    assert leaks(body, "a_viewer", "/") == ["team-b/worker", "namespace secret"]
    assert leaks(body, "a_viewer", "/r/team-b/worker") == ["namespace secret"]
    # Fixed text of a template is not data ("For example <code>/r/team-a/api</code>").
    static = next(s for s in STATIC_SNIPPETS if "team-a/api" in s)
    assert leaks(f"<p>{static}</p>", "no_team", "/") == []
