"""End to end: a real registry with ``auth.token`` pointing at a live server of the app, and
skopeo as the client with ``--creds``.

One registry serves the whole module (tests use distinct repository names); the database is
emptied between tests, so each test makes the people and grants it needs.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from registryui.browse import lookup
from registryui.catalog.models import Repository
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.devtools.images import SKOPEO, ImageSpec, Layout, skopeo_copy
from registryui.devtools.registry import RegistryProcess
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.client import parse_challenge
from registryui.sync.syncer import Syncer
from registryui.teams.models import SiteSettings
from registryui.tokens.signing import issue

from .support import ISSUER, SERVICE

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def token_registry(live_server, key_files, tmp_path_factory):
    registry = RegistryProcess(
        tmp_path_factory.mktemp("token-registry"),
        token_auth={
            "realm": f"{live_server.url}/auth/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(key_files.cert),
        },
    ).start()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory) -> Layout:
    layout = Layout(tmp_path_factory.mktemp("token-layout"))
    layout.add_image("one", ImageSpec(files={"one.txt": b"one\n"}))
    layout.add_image("two", ImageSpec(files={"two.txt": b"two\n"}))
    return layout


@pytest.fixture
def registry(settings, token_mode, token_registry) -> RegistryProcess:
    settings.REGISTRY_URL = token_registry.url
    settings.REGISTRY_PUBLIC_HOST = token_registry.host
    settings.REGISTRY_RETRIES = 1
    return token_registry


def push(layout: Layout, tag: str, registry: RegistryProcess, reference: str, creds: str | None):
    return skopeo_copy(layout, tag, f"{registry.host}/{reference}", creds=creds, check=False)


def pull(registry: RegistryProcess, reference: str, creds: str | None, dest: Path):
    """A real pull: manifest and every blob, into a local OCI layout."""
    args = [SKOPEO, "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false"]
    args += ["--src-creds", creds] if creds is not None else ["--src-no-creds"]
    args += [f"docker://{registry.host}/{reference}", f"oci:{dest}:pulled"]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def app_digest(name: str, tag: str) -> str | None:
    """The digest the registry has for a tag, asked by the app's own client (token mode)."""
    try:
        return get_client().head_manifest(name, tag).digest
    except RegistryError as exc:
        if exc.not_found:
            return None
        raise


def denied(result: subprocess.CompletedProcess) -> bool:
    text = result.stderr.lower()
    return result.returncode != 0 and ("denied" in text or "unauthorized" in text)


def test_a_pusher_pushes_and_pulls_their_teams_repository(
    registry, personas, image_layout, tmp_path
) -> None:
    result = push(image_layout, "one", registry, "team-a/new:1", personas.creds(personas.pusher))
    assert result.returncode == 0, result.stderr
    pulled = pull(registry, "team-a/new:1", personas.creds(personas.pusher), tmp_path / "out")
    assert pulled.returncode == 0, pulled.stderr
    assert app_digest("team-a/new", "1") is not None
    # The push token was audited: who, what was asked, what was granted.
    entries = AuditEntry.objects.filter(action="token_issued", actor=personas.pusher)
    assert any(
        {"type": "repository", "name": "team-a/new", "actions": ["pull", "push"]}
        in e.details["granted"]
        for e in entries
    )


def test_a_pusher_cannot_push_to_another_team(registry, personas, image_layout) -> None:
    result = push(image_layout, "one", registry, "team-b/x:1", personas.creds(personas.pusher))
    assert denied(result), result.stderr
    assert app_digest("team-b/x", "1") is None


def test_a_viewer_pulls_but_cannot_push(registry, personas, image_layout, tmp_path) -> None:
    seeded = push(image_layout, "one", registry, "team-a/shared:1", personas.creds(personas.pusher))
    assert seeded.returncode == 0, seeded.stderr
    viewer = personas.creds(personas.viewer)
    pulled = pull(registry, "team-a/shared:1", viewer, tmp_path / "out")
    assert pulled.returncode == 0, pulled.stderr
    pushed = push(image_layout, "two", registry, "team-a/shared:2", viewer)
    assert denied(pushed), pushed.stderr
    assert app_digest("team-a/shared", "2") is None


def test_a_deleter_deletes_by_digest_through_the_registry_api(
    registry, personas, image_layout
) -> None:
    seeded = push(image_layout, "two", registry, "team-a/doomed:1", personas.creds(personas.pusher))
    assert seeded.returncode == 0, seeded.stderr
    digest = app_digest("team-a/doomed", "1")
    assert digest

    # These clients fetch their tokens from /auth/token over HTTP with Basic credentials.
    as_pusher = RegistryClient(registry.url, username="pusher", password="pw-pusher", retries=0)
    with pytest.raises(RegistryError) as refused:
        as_pusher.delete_manifest("team-a/doomed", digest)
    assert refused.value.code == "DENIED"
    assert app_digest("team-a/doomed", "1") == digest

    as_deleter = RegistryClient(registry.url, username="deleter", password="pw-deleter", retries=0)
    as_deleter.delete_manifest("team-a/doomed", digest)
    assert app_digest("team-a/doomed", "1") is None
    entry = AuditEntry.objects.filter(action="token_issued", actor=personas.deleter).latest("id")
    assert entry.details["granted"] == [
        {"type": "repository", "name": "team-a/doomed", "actions": ["delete"]}
    ]


def test_anonymous_is_denied_unless_anonymous_viewing_is_on(
    registry, personas, image_layout, tmp_path
) -> None:
    seeded = push(image_layout, "one", registry, "team-a/public:1", personas.creds(personas.pusher))
    assert seeded.returncode == 0, seeded.stderr
    assert denied(pull(registry, "team-a/public:1", None, tmp_path / "a"))

    SiteSettings(anonymous_view=True, public_patterns="team-a/public").save()
    pulled = pull(registry, "team-a/public:1", None, tmp_path / "b")
    assert pulled.returncode == 0, pulled.stderr
    # Anonymous never pushes, and sees only the public patterns.
    assert denied(push(image_layout, "two", registry, "team-a/public:2", None))
    assert denied(pull(registry, "team-a/shared:1", None, tmp_path / "c"))


def test_a_personal_access_token_works_with_skopeo_until_revoked(
    registry, personas, image_layout, tmp_path, client
) -> None:
    client.force_login(personas.pusher)
    page = client.post("/profile/tokens/", {"name": "laptop", "max_level": 20, "expires": "30"})
    assert page.status_code == 200
    secret = re.search(r"rui_pat_[A-Za-z0-9_-]+", page.content.decode()).group(0)
    creds = f"pusher:{secret}"

    result = push(image_layout, "one", registry, "team-a/pat:1", creds)
    assert result.returncode == 0, result.stderr
    assert pull(registry, "team-a/pat:1", creds, tmp_path / "a").returncode == 0
    # The token is the user's: never their password, never someone else's name.
    assert denied(pull(registry, "team-a/pat:1", f"viewer:{secret}", tmp_path / "b"))

    token = personas.pusher.registry_tokens.get()
    assert client.post(f"/profile/tokens/{token.pk}/revoke").status_code == 302
    assert denied(pull(registry, "team-a/pat:1", creds, tmp_path / "c"))
    assert denied(push(image_layout, "two", registry, "team-a/pat:2", creds))


def test_a_robot_account_works_with_skopeo_until_revoked(
    registry, personas, image_layout, tmp_path, client
) -> None:
    client.force_login(personas.admin_a)
    page = client.post(
        "/profile/robots/",
        {
            "team": personas.team_a_admins.pk,
            "name": "ci",
            "expires": "30",
            "grants": "team-a/ci/*  push\nteam-a/shared pull",
        },
    )
    assert page.status_code == 200, page.content.decode()[:2000]
    secret = re.search(r"rui_robot_[A-Za-z0-9_-]+", page.content.decode()).group(0)
    creds = f"robot$ci:{secret}"

    result = push(image_layout, "one", registry, "team-a/ci/app:1", creds)
    assert result.returncode == 0, result.stderr
    assert pull(registry, "team-a/ci/app:1", creds, tmp_path / "a").returncode == 0
    # Only what its grants say, although its team could do more.
    assert denied(push(image_layout, "one", registry, "team-a/elsewhere:1", creds))

    robot = personas.team_a_admins.robots.get()
    assert client.post(f"/profile/robots/{robot.pk}/revoke").status_code == 302
    assert denied(pull(registry, "team-a/ci/app:1", creds, tmp_path / "b"))


def test_the_apps_own_client_syncs_browses_retags_and_deletes_in_token_mode(
    registry, personas, image_layout, client
) -> None:
    seeded = push(image_layout, "one", registry, "team-a/ui:1", personas.creds(personas.pusher))
    assert seeded.returncode == 0, seeded.stderr
    app = get_client()
    assert app.token_provider is not None
    tokens_before = app.stats["token"]

    # Sync: catalog (registry:catalog:*), tags, HEADs, manifests and configs.
    run = Syncer(app).run()
    assert run.status == "succeeded", run.error
    repository = Repository.objects.get(name="team-a/ui")
    assert repository.tags.get(name="1").manifest.digest == app_digest("team-a/ui", "1")
    # The app signed its own tokens instead of asking itself over HTTP.
    assert app.stats["token"] == tokens_before

    # Browse: the resolver and the reference lookup, and the repository list page.
    resolved = lookup.resolve(personas.viewer, "team-a/ui:1")
    assert resolved.manifest.digest == app_digest("team-a/ui", "1")
    client.force_login(personas.viewer)
    assert "team-a/ui" in client.get("/").content.decode()
    page = client.get("/r/team-a/ui")
    assert page.status_code == 200
    assert "team-a/ui" in page.content.decode()
    tag_page = client.get("/r/team-a/ui:1")
    assert tag_page.status_code == 200
    assert resolved.manifest.digest.split(":")[1][:12] in tag_page.content.decode()

    # Push through the client (a retag: pull,push) and delete by digest.
    ref, body = app.get_manifest("team-a/ui", "1")
    app.put_manifest("team-a/ui", "copy", body, ref.media_type)
    assert app_digest("team-a/ui", "copy") == ref.digest
    app.delete_manifest("team-a/ui", ref.digest)
    assert app_digest("team-a/ui", "1") is None
    assert app_digest("team-a/ui", "copy") is None
    assert AuditEntry.objects.filter(
        action="token_issued", actor_name="registryui$app", repository="team-a/ui"
    ).exists()


def _catalog_with(registry: RegistryProcess, token: str) -> requests.Response:
    return requests.get(
        f"{registry.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


CATALOG = [{"type": "registry", "name": "catalog", "actions": ["*"]}]


def test_the_registry_accepts_a_fresh_token_and_rejects_an_expired_one(registry) -> None:
    assert _catalog_with(registry, issue("root", CATALOG).token).status_code == 200
    # Past the registry's 60 seconds of leeway for clock skew.
    expired = issue("root", CATALOG, now=time.time() - 600, expires_in=300).token
    response = _catalog_with(registry, expired)
    assert response.status_code == 401
    _, challenge = parse_challenge(response.headers["WWW-Authenticate"])
    assert challenge["error"] == "invalid_token"


def test_the_registry_rejects_a_token_for_another_service(registry) -> None:
    response = _catalog_with(registry, issue("root", CATALOG, service="someone-else").token)
    assert response.status_code == 401
    _, challenge = parse_challenge(response.headers["WWW-Authenticate"])
    assert challenge["error"] == "invalid_token"


def test_the_registry_rejects_a_token_signed_with_another_key(registry, settings, tmp_path):
    settings.TOKEN_KEY_FILE = str(tmp_path / "other-key.pem")
    settings.TOKEN_CERT_FILE = str(tmp_path / "other-cert.pem")
    call_command("token_keys", stdout=io.StringIO(), stderr=io.StringIO())
    response = _catalog_with(registry, issue("root", CATALOG).token)
    assert response.status_code == 401


def test_the_registry_enforces_the_actions_in_the_token(registry, personas) -> None:
    """A viewer who asks for push gets a token with pull only, and cannot start an upload."""
    response = requests.get(f"{registry.url}/v2/", timeout=10)
    _, challenge = parse_challenge(response.headers["WWW-Authenticate"])
    token = requests.get(
        challenge["realm"],
        params={"service": challenge["service"], "scope": "repository:team-a/v:pull,push"},
        auth=("viewer", "pw-viewer"),
        timeout=10,
    ).json()["token"]
    upload = requests.post(
        f"{registry.url}/v2/team-a/v/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert upload.status_code == 401
    assert "insufficient_scope" in upload.headers["WWW-Authenticate"]
