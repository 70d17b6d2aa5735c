"""A failure never deletes synced data: the registry killed mid-sync, the catalog failing
part-way, the registry down from the start."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from registryui.catalog.models import Repository, SyncRun, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.faults import FaultProxy
from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer

NAMES = [f"team-{i % 2}/app-{i:02d}" for i in range(40)]


def snapshot() -> set[tuple[str, str, str]]:
    return set(Tag.objects.values_list("repository__name", "name", "manifest__digest"))


@pytest.fixture
def seeded(registry, settings):
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_RETRIES = 1
    with RegistryClient(registry.url) as client:
        seeder = Seeder(client)
        seeder.seed(NAMES, ["1", "2"])
        yield registry, seeder


@pytest.mark.django_db
def test_the_registry_killed_mid_sync_loses_nothing(seeded, monkeypatch, capsys):
    registry, seeder = seeded
    call_command("sync_registry")
    before = snapshot()
    assert len(before) == 80
    # Every tag moves upstream, so that the second run has real work to write.
    seeder.put_many((name, "1", f"{name}:moved") for name in NAMES)

    stored = []
    original = Syncer.store_snapshot

    def store_then_kill(self, snapshot, **kwargs):
        original(self, snapshot, **kwargs)
        stored.append(snapshot.name)
        if len(stored) == 3:
            registry.kill()  # SIGKILL, as a crash or an OOM kill would

    monkeypatch.setattr(Syncer, "store_snapshot", store_then_kill)
    # The run holds for this long before it gives up on a registry that stopped answering.
    monkeypatch.setattr(Syncer, "OUTAGE_SECONDS", 1.5)
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry", "--concurrency", "2")
    assert exited.value.code == 1
    assert registry.process.poll() is not None

    run = SyncRun.objects.latest()
    assert run.status == SyncRun.Status.FAILED
    assert "stopped answering for " in run.error and "nothing was removed" in run.error
    assert run.repositories_removed == 0
    assert run.repositories_synced >= 2
    assert set(Repository.objects.values_list("name", flat=True)) == set(NAMES)
    after = snapshot()
    assert len(after) == 80  # every tag is still there
    synced = {name for name, _, _ in after - before}
    # Each repository holds either its old tags or, if it was stored before the kill, the new.
    for name, tag, digest in after:
        if name in synced and tag == "1":
            assert digest == seeder.manifest(f"{name}:moved")[1]
        else:
            assert (name, tag, digest) in before
    failed = Repository.objects.exclude(last_sync_error="")
    assert set(run.errors.values_list("repository", flat=True)) == set(
        failed.values_list("name", flat=True)
    )
    assert "sync failed" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_catalog_failing_part_way_removes_nothing(seeded, capsys):
    """The second catalog page answers 500 (FaultProxy: a real registry will not fail one page
    on demand). Nothing is removed, not even repositories the first page did not list."""
    registry, seeder = seeded
    call_command("sync_registry")
    Repository.objects.create(name="zzz/known-before")
    before = snapshot()
    seeder.put("team-0/app-00", "3")

    with FaultProxy(registry.url) as proxy:
        proxy.fail(500, method="GET", path=r"^/v2/_catalog\?last=")
        with RegistryClient(proxy.url, retries=1, backoff_factor=0) as client:
            run = Syncer(client, page_size=10).run()

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("Listing the catalog failed after 10 names:")
    assert run.repositories_removed == 0
    assert run.repositories_seen == run.repositories_synced == 10
    assert [(e.repository, e.code) for e in run.errors.all()] == [("", "UNAVAILABLE")]
    assert set(Repository.objects.values_list("name", flat=True)) == {*NAMES, "zzz/known-before"}
    # The repositories it did list were synced (team-0/app-00 is on the first page).
    assert snapshot() - before == {("team-0/app-00", "3", seeder.manifest("team-0/app-00:3")[1])}


@pytest.mark.django_db
def test_a_registry_that_is_down_fails_fast_and_keeps_everything(seeded, settings, capsys):
    call_command("sync_registry")
    before = snapshot()
    settings.REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry")
    assert exited.value.code == 1
    run = SyncRun.objects.latest()
    assert run.status == SyncRun.Status.FAILED
    assert "The registry cannot be reached." in run.error
    assert snapshot() == before
    out, err = capsys.readouterr()
    assert "sync failed: 0/0 repositories" in out
    assert "(catalog): The registry cannot be reached. [UNREACHABLE]" in err


@pytest.mark.django_db
def test_an_unexpected_error_is_recorded_on_the_run(seeded, monkeypatch):
    """A bug or a database failure still leaves a finished, failed run behind."""

    def broken(self, snapshot, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Syncer, "store_snapshot", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        Syncer(get_client()).run()
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED
    assert run.error == "RuntimeError: disk full"
    assert run.finished_at is not None
    assert not Repository.objects.exists()
