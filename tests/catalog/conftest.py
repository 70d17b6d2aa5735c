"""Fixtures of the browse, search and lookup tests: the sample images in a real registry,
synced into the database once per module, and the personas of ``tests/personas.py``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import transaction
from django.test import override_settings

from registryui.devtools.images import Layout, skopeo_copy, skopeo_digest
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.samples import push_samples
from tests.personas import Persona, make_personas

PUBLIC_HOST = "registry.example.com"


@dataclass
class Samples:
    """A running registry holding the samples, and the digest of every pushed reference."""

    process: RegistryProcess
    digests: dict[str, str]
    root: Path


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Iterator[Samples]:
    """``push_samples`` plus two tags that share digests across repositories:

    - ``team-b/worker:borrowed`` is ``team-a/api:1.5`` (other tags on this image, elsewhere);
    - ``secret/vault:latest`` is ``hello:latest`` (a canary that only a superuser may see).
    """
    root = tmp_path_factory.mktemp("catalog-samples")
    process = RegistryProcess(root / "registry").start()
    try:
        pushed = push_samples(process.host, root)
        layout = Layout(root / "samples-layout")
        skopeo_copy(layout, "api-1.5", f"{process.host}/team-b/worker:borrowed")
        skopeo_copy(layout, "hello", f"{process.host}/secret/vault:latest")
        digests = dict(pushed.digests)
        for reference in (
            "hello:latest",
            "team-b/worker:v1",
            "team-b/worker:v2",
            "platform/tools/builder:2026.11",
        ):
            digests[reference] = skopeo_digest(f"{process.host}/{reference}")
        digests["secret/vault:latest"] = digests["hello:latest"]
        digests["team-b/worker:borrowed"] = digests["team-a/api:1.5"]
        yield Samples(process, digests, root)
    finally:
        process.stop()


def registry_settings(samples: Samples) -> override_settings:
    return override_settings(
        REGISTRY_URL=samples.process.url, REGISTRY_PUBLIC_HOST=PUBLIC_HOST, REGISTRY_RETRIES=1
    )


def sync(samples: Samples):
    from registryui.catalog.upstream import get_client
    from registryui.sync.syncer import Syncer

    run = Syncer(get_client(), concurrency=4).run()
    assert run.ok, run.error
    return run


@dataclass
class World:
    samples: Samples
    personas: dict[str, Persona]

    def client(self, persona: str = "superuser", **kwargs):
        return self.personas[persona].client(**kwargs)

    def digest(self, reference: str) -> str:
        return self.samples.digests[reference]


@pytest.fixture(scope="module")
def world(samples, django_db_setup, django_db_blocker) -> Iterator[World]:
    """The samples synced into the database and the personas, for one test module.

    Written in one transaction that is rolled back after the module; each test runs in a
    savepoint inside it (pytest-django's ``db``), so a test's own changes are undone after it.
    """
    with django_db_blocker.unblock(), registry_settings(samples):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            sync(samples)
            yield World(samples, make_personas())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def catalog(world, db, settings) -> World:
    """``world`` inside a test: the database is usable and REGISTRY_PUBLIC_HOST is set."""
    settings.REGISTRY_URL = world.samples.process.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    return world
