from __future__ import annotations

import pytest

from tests.personas import personas  # noqa: F401 (the fixture)

from .support import start_labelled


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    started = start_labelled(tmp_path_factory.mktemp("overview"))
    yield started
    started.process.stop()


@pytest.fixture
def synced(labelled, settings, personas):  # noqa: F811
    """The labelled registry synced into the test's database, and the personas."""
    from registryui.catalog.upstream import get_client
    from registryui.sync.syncer import Syncer

    settings.REGISTRY_URL = labelled.process.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 1
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    return personas
