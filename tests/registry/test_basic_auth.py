"""A registry behind HTTP Basic authentication (htpasswd, bcrypt): the client and the sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from registryui.catalog.models import Repository, SyncRun, Tag
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeded, Seeder
from registryui.registry import RegistryClient, RegistryError

USER, PASSWORD = "ci-sync", "s3cret pass:with colon"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory) -> Iterator[tuple[RegistryProcess, Seeded]]:
    root = tmp_path_factory.mktemp("basic")
    process = RegistryProcess(root / "registry", htpasswd={USER: PASSWORD}).start()
    try:
        with RegistryClient(process.url, username=USER, password=PASSWORD) as client:
            seeded = Seeder(client).seed(["team-a/api", "hello"], ["1", "latest"])
        yield process, seeded
    finally:
        process.stop()


def test_the_htpasswd_entries_are_bcrypt(basic_registry):
    process = basic_registry[0]
    user, _, hashed = (process.root / "htpasswd").read_text().strip().partition(":")
    assert user == USER
    assert hashed.startswith("$2y$")


def test_right_credentials_list_and_read(basic_registry):
    process, seeded = basic_registry
    with RegistryClient(process.url, username=USER, password=PASSWORD, retries=0) as client:
        assert sorted(name for page in client.iter_catalog() for name in page) == sorted(
            seeded.tags
        )
        assert client.head_manifest("hello", "1").digest == seeded.tags["hello"]["1"]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        (USER, "wrong", "The registry refused our credentials."),
        (
            "",
            "",
            "The registry requires credentials and none are configured "
            "(REGISTRY_USERNAME, REGISTRY_PASSWORD).",
        ),
    ],
)
def test_wrong_or_missing_credentials_are_unauthorized(basic_registry, username, password, message):
    process = basic_registry[0]
    with RegistryClient(process.url, username=username, password=password, retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.list_tags("hello")
    error = caught.value
    assert (error.status, error.code) == (401, "UNAUTHORIZED")
    assert error.message == message
    assert error.detail == "authentication required"  # the registry's own words


@pytest.fixture
def basic_settings(settings, basic_registry):
    settings.REGISTRY_URL = basic_registry[0].url
    settings.REGISTRY_USERNAME = USER
    settings.REGISTRY_PASSWORD = PASSWORD
    settings.REGISTRY_RETRIES = 0
    return settings


@pytest.mark.django_db
def test_the_sync_uses_the_configured_credentials(basic_registry, basic_settings, capsys):
    call_command("sync_registry")
    run = SyncRun.objects.get()
    assert run.ok
    assert {
        (t.repository.name, t.name): t.manifest.digest for t in Tag.objects.select_related()
    } == {
        (name, tag): digest
        for name, tags in basic_registry[1].tags.items()
        for tag, digest in tags.items()
    }
    assert "sync succeeded: 2/2 repositories, 4 tags (+4 ~0 -0)" in capsys.readouterr().out


@pytest.mark.django_db
def test_wrong_credentials_fail_the_sync_and_keep_the_data(basic_registry, basic_settings, capsys):
    call_command("sync_registry")
    before = set(Tag.objects.values_list("repository__name", "name", "manifest__digest"))
    basic_settings.REGISTRY_PASSWORD = "wrong"
    with pytest.raises(SystemExit) as exited:
        call_command("sync_registry")
    assert exited.value.code == 1
    run = SyncRun.objects.latest()
    assert run.status == SyncRun.Status.FAILED
    assert "Listing the catalog failed after 0 names" in run.error
    assert [(e.repository, e.code) for e in run.errors.all()] == [("", "UNAUTHORIZED")]
    assert set(Tag.objects.values_list("repository__name", "name", "manifest__digest")) == before
    assert Repository.objects.count() == 2
    captured = capsys.readouterr()
    assert "sync failed: 0/0 repositories" in captured.out
    assert "(catalog): The registry refused our credentials." in captured.err
