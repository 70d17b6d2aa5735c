"""The rows of the API's permission matrix (test_matrix.py), also fuzzed by
tests/security/test_fuzz.py: one request per row; ``{placeholders}`` are digests of
``tests.teams.matrix.DIGESTS`` and ``{policy}``."""

from __future__ import annotations

from dataclasses import dataclass

from tests.teams.matrix import REPOSITORIES, STAFF_PERSONAS, D, P, V, level


@dataclass
class Row:
    method: str
    path: str
    body: dict | None = None
    repository: str = ""
    needs: int = V
    ok: int = 200
    #: "viewer" (reads: the public persona passes), "member" (a credential), "staff", "delete"
    #: (may delete somewhere: retention)
    gate: str = "viewer"
    lists: frozenset[str] | None = None
    writes: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def expect(self, persona: str) -> int:
        if persona == "anonymous" or (persona == "public" and self.gate != "viewer"):
            return 401 if self.method != "GET" or persona == "anonymous" else 403
        if self.gate == "staff" and persona not in STAFF_PERSONAS:
            return 403
        if self.gate == "delete" and not any(level(persona, r) >= D for r in REPOSITORIES):
            return 403
        if self.repository:
            have = level(persona, self.repository)
            if have < V:
                return 404
            if have < self.needs:
                return 403
        return self.ok


ROWS = [
    Row("GET", "/repositories", lists=REPOSITORIES),
    Row("GET", "/repositories?namespace=team-a&sort=-size", lists=REPOSITORIES),
    Row("GET", "/repositories/team-a/api", repository="team-a/api"),
    Row("GET", "/repositories/secret/vault/-/tags", repository="secret/vault"),
    Row("GET", "/repositories/team-b/worker/-/tags?sort=tag", repository="team-b/worker"),
    Row("GET", "/manifests/team-a/api:1.4", repository="team-a/api"),
    Row("GET", "/manifests/team-b/worker@{worker_v1}", repository="team-b/worker"),
    Row("GET", "/search?q=latest"),
    Row("GET", "/audit", gate="staff"),
    Row("GET", "/sync"),
    Row("GET", "/retention/policies", gate="delete"),
    Row("GET", "/retention/policies/{policy}/preview", gate="delete"),
    Row(
        "POST",
        "/retention/policies/{policy}/apply",
        {"fingerprint": "not-the-preview"},
        gate="delete",
        ok=409,
    ),
    Row(
        "DELETE",
        "/tags/team-a/api:1.4?digest={api_14}",
        repository="team-a/api",
        needs=D,
        writes=True,
    ),
    Row(
        "DELETE",
        "/images/team-b/worker@{worker_v1}",
        repository="team-b/worker",
        needs=D,
        writes=True,
    ),
    # Only a restore that a delete offered is carried out: none here (409, nothing written).
    Row(
        "POST",
        "/manifests/team-a/api@{api_14}/-/restore",
        {"tag": "1.4"},
        repository="team-a/api",
        needs=P,
        ok=409,
    ),
    Row(
        "POST",
        "/manifests/team-a/web:2.0/-/tags",
        {"tags": ["from-the-matrix"]},
        repository="team-a/web",
        needs=P,
        writes=True,
    ),
    Row(
        "POST",
        "/repositories/team-a/api/-/bulk-delete",
        {"tags": [{"tag": "1.4", "digest": "{api_14}"}], "dry_run": True},
        repository="team-a/api",
        needs=D,
    ),
]
for row in ROWS:
    if row.method != "GET":
        row.gate = "member" if row.gate == "viewer" else row.gate
