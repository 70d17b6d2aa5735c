"""The permission matrix: every URL and action of the product, for every persona → the outcome.

One row is one request. Adding a URL means adding one line to ``ROWS``; a test fails when a
URL pattern of ``registryui.urls`` (outside ``admin/`` and ``accounts/``) has no row.

What each persona may do is written out below (``LEVELS``), independently of the resolver,
so the matrix checks the resolver instead of repeating it. The outcome of a row is worked out
from its *gate* (who gets through the door at all) and the level it needs on a repository:

- anonymous visitors go to the login page (``LOGIN``) at every gate but ``OPEN``; with
  anonymous viewing on (the ``public`` persona) they pass the ``VIEWER`` gate;
- ``STAFF`` pages answer 403 to logged-in users who are not staff;
- then, for a row about a repository: hidden (no level) → 404, visible but below the needed
  level → 403, otherwise the row's ``ok`` status;
- ``only=`` limits a row about no repository to some personas (others get ``denied``);
- keyword arguments named after a persona override its outcome (``superuser=404``).

Lists (``lists=``): the page must link to exactly the candidate repositories the persona may
see. Every response, of every row, must not name a repository the persona may not see unless
the request itself named it. Mutations (``post(...)``, and ``guard=True``) that are refused must
not reach the registry at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registryui.teams.models import Level
from tests.personas import PERSONA_NAMES

V, P, D, A = Level.VIEW, Level.PUSH, Level.DELETE, Level.ADMIN
LOGIN = "login"  # a redirect to the login page (HX-Redirect for htmx requests)

#: Every repository of the sample registry (tests/support.py: samples_registry).
REPOSITORIES = frozenset(
    {
        "hello",
        "platform/tools/builder",
        "secret/vault",
        "team-a/api",
        "team-a/web",
        "team-b/worker",
    }
)

#: What each persona may do, by hand (tests/personas.py has the teams and grants).
LEVELS: dict[str, dict[str, int]] = {
    "anonymous": {},
    "public": {"hello": V},
    "no_team": {},
    "a_viewer": {"team-a/api": V, "team-a/web": V, "hello": V},
    "a_deleter": {"team-a/api": D, "team-a/web": D, "hello": V},
    "b_admin": {"team-b/worker": A, "platform/tools/builder": V},
    "superuser": dict.fromkeys(REPOSITORIES, A),
}
STAFF_PERSONAS = {"b_admin", "superuser"}


def level(persona: str, repository: str) -> int:
    return LEVELS[persona].get(repository, 0)


def visible(persona: str) -> frozenset[str]:
    return frozenset(r for r in REPOSITORIES if level(persona, r) >= V)


#: The level each action on a reference (``/r/<reference>/-/<action>``) needs: a page must
#: never show a persona a link or form for an action they may not take.
ACTION_LEVELS = {
    "delete": D,
    "delete-image": D,
    "bulk-delete": D,
    "retag": P,
    "restore": P,
    "add-tags": P,
    # The source needs view; the target's push is asked of the target (see the rows).
    "copy": V,
    "overview": P,
    "star": V,
    "sbom": V,
    "sbom.json": V,
}

#: Digests the rows refer to as {name}: resolved from the synced database at the start.
DIGESTS = {
    "api_14": "team-a/api:1.4",
    "api_15": "team-a/api:1.5",
    "web": "team-a/web:2.0",
    "hello": "hello:latest",
    "worker_v1": "team-b/worker:v1",
}

# Gates.
OPEN = "open"  # anyone (health check, token endpoint, registry webhook)
VIEWER = "viewer"  # viewer_required: logged in, or anonymous viewing on
MEMBER = "member"  # logged in
STAFF = "staff"  # logged in and staff


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: dict[str, int | str]
    data: dict[str, Any] = field(default_factory=dict)
    htmx: bool = False
    #: The candidates of a list: the page links to exactly those the persona may see.
    lists: frozenset[str] | None = None
    #: A refused request must not reach the registry (checked on its access log).
    guard: bool = False
    #: An allowed request must write to the registry (a mutation done for real).
    writes: bool = False
    #: Known failures: persona → why (strict: the case fails once it is fixed, so that
    #: the entry gets removed).
    xfail: dict[str, str] = field(default_factory=dict)
    #: POSTs need a CSRF token (a test checks that one without it is refused).
    csrf: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}{' (htmx)' if self.htmx else ''}"


def _expect(
    gate: str,
    repository: str | None,
    needs: int,
    ok: int,
    only: set[str] | None,
    denied: int,
    overrides: dict[str, int | str],
) -> dict[str, int | str]:
    unknown = set(overrides) - set(PERSONA_NAMES)
    if unknown:
        raise ValueError(f"not personas: {sorted(unknown)}")
    out: dict[str, int | str] = {}
    for persona in PERSONA_NAMES:
        anonymous = persona in ("anonymous", "public")
        if gate != OPEN and anonymous and not (gate == VIEWER and persona == "public"):
            out[persona] = LOGIN
        elif gate == STAFF and persona not in STAFF_PERSONAS:
            out[persona] = 403
        elif only is not None and persona not in only:
            out[persona] = denied
        elif repository is not None:
            have = level(persona, repository)
            out[persona] = 404 if have < V else 403 if have < needs else ok
        else:
            out[persona] = ok
    out.update(overrides)
    return out


def get(
    path: str,
    gate: str = VIEWER,
    *,
    repository: str | None = None,
    needs: int = V,
    ok: int = 200,
    only: set[str] | None = None,
    denied: int = 403,
    lists: frozenset[str] | set[str] | None = None,
    htmx: bool = False,
    guard: bool = False,
    settings: dict[str, Any] | None = None,
    xfail: dict[str, str] | None = None,
    **overrides: int | str,
) -> Row:
    return Row(
        "GET",
        path,
        _expect(gate, repository, needs, ok, only, denied, overrides),
        htmx=htmx,
        lists=frozenset(lists) if lists is not None else None,
        guard=guard,
        settings=settings or {},
        xfail=xfail or {},
    )


def post(
    path: str,
    data: dict[str, Any] | None = None,
    gate: str = MEMBER,
    *,
    repository: str | None = None,
    needs: int = V,
    ok: int = 302,
    only: set[str] | None = None,
    denied: int = 403,
    csrf: bool = True,
    htmx: bool = False,
    headers: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    content_type: str | None = None,
    writes: bool = False,
    **overrides: int | str,
) -> Row:
    return Row(
        "POST",
        path,
        _expect(gate, repository, needs, ok, only, denied, overrides),
        data=data or {},
        htmx=htmx,
        guard=True,
        csrf=csrf,
        headers=headers or {},
        settings=settings or {},
        content_type=content_type,
        writes=writes,
    )


ALL = REPOSITORIES
TEAM_ADMINS = {"b_admin", "superuser"}
DELETERS = {"a_deleter", "b_admin", "superuser"}  # delete on some repository
EVENTS_TOKEN = {"REGISTRY_EVENTS_TOKEN": "matrix-events-secret"}

ROWS: list[Row] = [
    # -- catalog: lists and searches ------------------------------------------------------------
    get("/", lists=ALL),
    get("/", lists=ALL, htmx=True),
    get("/?namespace=team-b", lists={"team-b/worker"}),
    get("/?namespace=-", lists={"hello"}),
    get("/?q=api&sort=-updated", lists={"team-a/api"}, htmx=True),
    get("/?page=2", **{p: 404 for p in PERSONA_NAMES if p != "anonymous"}),
    get("/?sort=bogus", **{p: 400 for p in PERSONA_NAMES if p != "anonymous"}),
    get("/search/?q=worker", lists={"team-b/worker", "team-a/api"}),  # team-a/api:worker-copy
    get("/search/?q=a", lists=ALL - {"hello"}, htmx=True),
    get("/search/?q=latest", lists={"hello", "secret/vault", "team-a/api", "team-a/web"}),
    get("/search/?q={hello}", lists={"hello", "secret/vault"}),  # a digest in two repositories
    get("/search/?q={worker_v1}", lists={"team-a/api", "team-b/worker"}, htmx=True),
    get("/search/?q=https://git.example.com", lists={"team-a/api", "platform/tools/builder"}),
    # A full reference goes straight to it when visible, and finds nothing when hidden.
    get("/search/?q=team-a/api:1.4", lists=set(), a_viewer=302, a_deleter=302, superuser=302),
    # -- push and pull guidance (issue 14): commands only, never a repository the persona hides
    get("/push/"),
    get("/push/?name=team-a/new&tool=skopeo&also=beta", htmx=True),
    # -- catalog: repository, tag and digest pages --------------------------------------------
    get("/r/team-a/api", repository="team-a/api"),
    get("/r/team-a/api?sort=-tag", repository="team-a/api", htmx=True),
    get("/r/team-a/api:1.5", repository="team-a/api"),
    # Two repositories share these images: "other tags on this image" must not cross over.
    get("/r/team-a/api:worker-copy", repository="team-a/api"),
    get("/r/team-b/worker:v1", repository="team-b/worker"),
    get("/r/hello:latest", repository="hello"),  # its image is secret/vault:latest too
    get("/r/team-a/web@{web}", repository="team-a/web"),
    get("/r/team-a/api@{api_14}", repository="team-a/api"),
    get("/r/secret/vault", repository="secret/vault"),
    get("/r/platform/tools/builder:2026.11", repository="platform/tools/builder"),
    get("/r/team-a/api:no-such-tag", repository="team-a/api", ok=404),
    get("/r/no/such/repository", repository="no/such/repository"),
    get("/r/Bad..Name", **{p: 400 for p in PERSONA_NAMES if p != "anonymous"}),
    # -- signatures, SBOMs (issue 17): the samples carry none, so a visible image says so -----
    get("/r/team-a/api@{api_14}/-/sbom", repository="team-a/api", ok=404),
    get("/r/team-a/api@{api_14}/-/sbom.json", repository="team-a/api", ok=404),
    get("/search/?q=signed:no", lists=ALL),
    get("/search/?q=has:sbom", lists=set()),
    # -- cleanup: confirmations (GET) and actions (POST) --------------------------------------
    get("/r/team-a/api:1.4/-/delete", MEMBER, repository="team-a/api", needs=D, guard=True),
    post(
        "/r/team-a/api:1.4/-/delete",
        {"confirm": "1.4@{api_14}"},
        repository="team-a/api",
        needs=D,
        ok=302,
        writes=True,
    ),
    get("/r/team-a/api@{api_14}/-/delete-image", MEMBER, repository="team-a/api", needs=D),
    post(
        "/r/team-a/api@{api_14}/-/delete-image",
        {"confirm": "1.4@{api_14}"},
        repository="team-a/api",
        needs=D,
        ok=302,
        writes=True,
    ),
    get("/r/team-a/api:1.4/-/retag", MEMBER, repository="team-a/api", needs=P, guard=True),
    post(
        "/r/team-a/api:1.4/-/retag",
        {"new_tag": "matrix"},
        repository="team-a/api",
        needs=P,
        ok=302,
        writes=True,
    ),
    get("/r/team-a/api:1.4/-/add-tags", MEMBER, repository="team-a/api", needs=P, guard=True),
    post(
        "/r/team-a/api:1.4/-/add-tags",
        {"tags": "matrix-a matrix-b"},
        repository="team-a/api",
        needs=P,
        ok=302,
        writes=True,
    ),
    get("/r/team-a/api:1.4/-/copy", MEMBER, repository="team-a/api", guard=True),
    # A copy within team-a/*: view on the source and push on the target, the same persona
    # outcomes as push on team-a/api (b_admin cannot see the source: 404).
    post(
        "/r/team-a/api:1.4/-/copy",
        {"to": "team-a/promoted", "tag": "1.4"},
        repository="team-a/api",
        needs=P,
        ok=302,
        writes=True,
    ),
    # Only a restore that a delete offered is carried out: none here (409, nothing written).
    post(
        "/r/team-a/api@{api_14}/-/restore", {"tag": "1.4"}, repository="team-a/api", needs=P, ok=409
    ),
    get("/r/team-b/worker/-/bulk-delete?tag=v1", MEMBER, repository="team-b/worker", needs=D),
    post(
        "/r/team-b/worker/-/bulk-delete",
        {"confirm": "v1@{worker_v1}"},
        repository="team-b/worker",
        needs=D,
        ok=302,
        writes=True,
    ),
    # Repository overviews (README) and stars: user data, no registry traffic.
    get("/r/team-a/api/-/overview", MEMBER, repository="team-a/api", needs=P),
    post(
        "/r/team-a/api/-/overview",
        {"description": "matrix", "readme": "# matrix"},
        repository="team-a/api",
        needs=P,
        ok=302,
    ),
    post("/r/team-a/api/-/star", {"star": "on"}, repository="team-a/api", needs=V, ok=302),
    # A cleanup POST redirects to its stored result: only who acted may open it.
    get("/results/{result}/", MEMBER, only={"a_deleter"}, denied=404),
    get("/retention/", MEMBER, only=DELETERS),
    get("/retention/{policy}/", MEMBER, only=DELETERS),
    # Without the preview's fingerprint nothing is applied (409), but the door is the same.
    post("/retention/{policy}/apply", {"fingerprint": "stale"}, only=DELETERS, ok=409),
    # -- storage (figures over the visible repositories only) ---------------------------------
    get("/storage/", lists=ALL),
    get("/storage/?page=1", lists=ALL, htmx=True),
    # Switching on or off: who may change policies (here the superuser; the policy is on, so
    # its switch-on page sends them back to it).
    get("/retention/{policy}/enable", MEMBER, only={"superuser"}, ok=302),
    post("/retention/{policy}/enable", {"fingerprint": "stale"}, only={"superuser"}, ok=302),
    post("/retention/{policy}/disable", only={"superuser"}, ok=302),
    # Stale images (issue 16): pushed=0 makes every image stale, so the list is every
    # repository the persona may see; the preview is retention's, for who may delete.
    get("/stale/?pulled=0&pushed=0", lists=ALL),
    get("/stale/preview?pulled=0&pushed=0", MEMBER, only=DELETERS),
    # -- events ------------------------------------------------------------------------------
    get("/status/", STAFF),  # staff include team admins: its sync failures are narrowed
    post("/status/sync-now", gate=STAFF),
    get("/healthz", OPEN),
    # For operators: a bearer token or an allowed network decides, not who is signed in (the
    # test client comes from 127.0.0.1, allowed by default; tests/ops/test_metrics.py).
    get("/metrics", OPEN),
    get("/favicon.ico", OPEN, ok=301),  # the vendored icon, for browsers that ask anyway
    # A session is no credential for the registry's notifications.
    post(
        "/events/registry",
        {"events": []},
        gate=OPEN,
        ok=401,
        csrf=False,
        settings=EVENTS_TOKEN,
        content_type="application/vnd.docker.distribution.events.v1+json",
    ),
    post(
        "/events/registry/pulls",
        {"events": []},
        gate=OPEN,
        ok=401,
        csrf=False,
        settings=EVENTS_TOKEN,
        content_type="application/vnd.docker.distribution.events.v1+json",
    ),
    # -- tokens ------------------------------------------------------------------------------
    get("/auth/token?service=registry&scope=repository:team-a/api:pull", OPEN, ok=404),
    get("/profile/tokens/", MEMBER),
    post("/profile/tokens/", {"name": "laptop", "max_level": 10, "expires": "7"}, ok=200),
    # Another user's token is hidden, for superusers too.
    post("/profile/tokens/{token}/revoke", only={"a_viewer"}, denied=404),
    get("/profile/robots/", MEMBER, only=TEAM_ADMINS),
    post(
        "/profile/robots/",
        {"team": "{team_b}", "name": "ci", "expires": "7", "grants": "team-b/* push"},
        only=TEAM_ADMINS,
        ok=200,
    ),
    post("/profile/robots/{robot}/revoke", only=TEAM_ADMINS, denied=404),
    # -- teams -------------------------------------------------------------------------------
    get("/profile/", MEMBER),
]


def cases() -> list[tuple[Row, str]]:
    return [(row, persona) for row in ROWS for persona in PERSONA_NAMES]
