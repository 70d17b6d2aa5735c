"""The client against a real registry in ``auth.token`` mode, with a tiny test token issuer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from registryui.catalog.models import Repository, SyncRun, Tag
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient, RegistryError

from .token_issuer import SERVICE, TokenIssuer

USERS = {"sync": "sync-secret", "pusher": "push-secret"}


def team_a_only(user: str, kind: str, name: str, actions: list[str]) -> list[str]:
    """``sync`` reads everything; ``pusher`` may push anywhere; nobody else gets anything."""
    if user == "pusher":
        return actions
    if user == "sync" and (kind == "registry" or name.startswith("team-a/")):
        return [a for a in actions if a in ("pull", "*")]
    return []


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory) -> Iterator[tuple[RegistryProcess, TokenIssuer, dict]]:
    root = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(root / "issuer", users=USERS, policy=team_a_only).start()
    process = RegistryProcess(root / "registry", token_auth=issuer.registry_config()).start()
    try:
        with RegistryClient(process.url, username="pusher", password=USERS["pusher"]) as client:
            seeder = Seeder(client)
            pushed = {
                "team-a/api": {tag: seeder.put("team-a/api", tag) for tag in ("1", "2")},
                "team-a/web": {"latest": seeder.put("team-a/web", "latest")},
                "team-b/secret": {"v1": seeder.put("team-b/secret", "v1")},
            }
        yield process, issuer, pushed
    finally:
        process.stop()
        issuer.stop()


@pytest.fixture
def issuer(token_registry) -> TokenIssuer:
    issuer = token_registry[1]
    issuer.requests.clear()
    issuer.expires_in = 300
    return issuer


def sync_client(process: RegistryProcess, password: str = USERS["sync"]) -> RegistryClient:
    return RegistryClient(process.url, username="sync", password=password, retries=0)


def test_it_fetches_a_token_per_scope_and_reuses_it(token_registry, issuer):
    process, _, pushed = token_registry
    with sync_client(process) as client:
        mark = process.mark()
        assert sorted(client.list_tags("team-a/api")) == ["1", "2"]
        first = process.requests_since(mark)
        # Anonymous first, 401 with the challenge, then the same request with the token.
        assert [(line.method, line.status) for line in first] == [("GET", 401), ("GET", 200)]
        assert len(issuer.requests) == 1
        assert issuer.requests[0].user == "sync"
        assert issuer.requests[0].scopes == ["repository:team-a/api:pull"]
        assert issuer.requests[0].service == SERVICE

        mark = process.mark()
        for tag, digest in pushed["team-a/api"].items():
            assert client.head_manifest("team-a/api", tag).digest == digest
        client.list_tags("team-a/api")
        # The cached token is presented at once: no 401, no new token.
        assert [line.status for line in process.requests_since(mark)] == [200, 200, 200]
        assert len(issuer.requests) == 1
        assert client.stats["token"] == 1


def test_it_lists_the_catalog_with_the_registry_scope(token_registry, issuer):
    process, _, pushed = token_registry
    with sync_client(process) as client:
        names = [name for page in client.iter_catalog(2) for name in page]
    assert names == sorted(pushed)
    assert issuer.requests[0].scopes == ["registry:catalog:*"]
    assert len(issuer.requests) == 1  # one token serves every page


def test_an_expired_token_is_replaced(token_registry, issuer, monkeypatch):
    process, _, _ = token_registry
    clock = [1000.0]
    monkeypatch.setattr("registryui.registry.client._now", lambda: clock[0])
    issuer.expires_in = 60
    with sync_client(process) as client:
        client.list_tags("team-a/web")
        clock[0] += 45  # within the lifetime less the client's 10 s margin
        client.list_tags("team-a/web")
        assert len(issuer.requests) == 1
        clock[0] += 10  # past it: the client must not present a token in its last seconds
        mark = process.mark()
        client.list_tags("team-a/web")
        assert len(issuer.requests) == 2
        # The client knew the token was stale and fetched a new one before asking the registry.
        assert [line.status for line in process.requests_since(mark)] == [200]


def test_insufficient_scope_is_denied_without_looping(token_registry, issuer):
    process, _, _ = token_registry
    with sync_client(process) as client:
        mark = process.mark()
        with pytest.raises(RegistryError) as caught:
            client.list_tags("team-b/secret")
        assert caught.value.code == "DENIED"
        assert caught.value.status == 401
        assert "denied" in caught.value.message
        # Anonymous 401, one token request, one 401 insufficient_scope, and that is all.
        assert [line.status for line in process.requests_since(mark)] == [401, 401]
        assert len(issuer.requests) == 1

        mark = process.mark()
        with pytest.raises(RegistryError) as again:
            client.head_manifest("team-b/secret", "v1")
        assert again.value.code == "DENIED"
        # The cached (insufficient) token is presented once; no new token is asked for.
        assert [line.status for line in process.requests_since(mark)] == [401]
        assert len(issuer.requests) == 1


def test_wrong_credentials_are_unauthorized(token_registry, issuer):
    process, _, _ = token_registry
    with sync_client(process, password="wrong") as client:
        with pytest.raises(RegistryError) as caught:
            client.list_tags("team-a/api")
    assert caught.value.code == "UNAUTHORIZED"
    assert "refused our credentials" in caught.value.message


def test_concurrent_workers_share_one_token_request(token_registry, issuer):
    process, _, _ = token_registry
    with RegistryClient(
        process.url, username="sync", password=USERS["sync"], pool_size=8, retries=0
    ) as client:
        barrier = threading.Barrier(8)
        results: list[list[str]] = []

        def work() -> None:
            barrier.wait()
            results.append(client.list_tags("team-a/api"))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(results) == 8 and all(sorted(r) == ["1", "2"] for r in results)
    assert len(issuer.requests) == 1


@pytest.mark.django_db
def test_the_sync_command_works_in_token_mode(token_registry, issuer, settings):
    """``sync`` may read team-a only: team-b fails as DENIED, and the run says so."""
    process, _, pushed = token_registry
    settings.REGISTRY_URL = process.url
    settings.REGISTRY_USERNAME = "sync"
    settings.REGISTRY_PASSWORD = USERS["sync"]
    settings.REGISTRY_RETRIES = 0
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry")
    assert exited.value.code == 1
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert run.repositories_failed == 1
    assert [(e.repository, e.code) for e in run.errors.all()] == [("team-b/secret", "DENIED")]
    synced = {(t.repository.name, t.name): t.manifest.digest for t in Tag.objects.select_related()}
    assert synced == {
        (name, tag): digest
        for name, tags in pushed.items()
        if name.startswith("team-a/")
        for tag, digest in tags.items()
    }
    assert not Repository.objects.filter(name="team-b/secret").exists()
