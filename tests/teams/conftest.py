from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import transaction
from django.test import override_settings

from registryui.devtools.images import Layout, skopeo_copy, skopeo_digest
from registryui.devtools.registry import AccessLine, RegistryProcess
from registryui.devtools.samples import push_samples
from tests.personas import Persona, make_personas, personas  # noqa: F401

#: Requests that change a registry's state.
WRITES = {"PUT", "POST", "PATCH", "DELETE"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Passwords set during these tests are hashed cheaply; stored PBKDF2 hashes still work."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@dataclass
class SampleRegistry:
    """A real registry holding the sample images, and a copy of its storage to go back to."""

    process: RegistryProcess
    digests: dict[str, str]
    snapshot: Path

    def restore(self) -> None:
        """Put the storage back as it was after the pushes (after a mutation was allowed)."""
        self.process.stop()
        shutil.rmtree(self.process.storage)
        shutil.copytree(self.snapshot, self.process.storage)
        self.process.start()

    def restore_if_written(self, since: list[AccessLine]) -> None:
        if any(line.method in WRITES for line in since):
            self.restore()


@pytest.fixture(scope="session")
def samples_registry(tmp_path_factory) -> Iterator[SampleRegistry]:
    """The samples of ``push_samples``, plus two extra tags that share digests across
    repositories so that "other tags on this image" and digest searches can leak:

    - ``secret/vault:latest`` is ``hello:latest`` (a canary only a superuser may see);
    - ``team-a/api:worker-copy`` is ``team-b/worker:v1``.
    """
    root = tmp_path_factory.mktemp("teams-samples")
    process = RegistryProcess(root / "registry").start()
    try:
        pushed = push_samples(process.host, root)
        layout = Layout(root / "samples-layout")
        skopeo_copy(layout, "hello", f"{process.host}/secret/vault:latest")
        skopeo_copy(
            layout, "worker-1", f"{process.host}/team-a/api:worker-copy", docker_format=True
        )
        process.stop()
        snapshot = root / "storage-snapshot"
        shutil.copytree(process.storage, snapshot)
        process.start()
        shared = [
            ("hello:latest", "secret/vault:latest"),
            ("team-b/worker:v1", "team-a/api:worker-copy"),
        ]
        for one, other in shared:
            assert skopeo_digest(f"{process.host}/{one}") == skopeo_digest(
                f"{process.host}/{other}"
            )
        yield SampleRegistry(process, dict(pushed.digests), snapshot)
    finally:
        process.stop()


@dataclass
class World:
    registry: SampleRegistry
    personas: dict[str, Persona]


@pytest.fixture(scope="module")
def world(samples_registry, django_db_setup, django_db_blocker) -> Iterator[World]:
    """The sample registry synced into the database, and the personas, for one module.

    Everything is written inside one transaction that is rolled back at the end of the
    module; each test runs in a savepoint inside it (pytest-django's ``db``), so what a test
    changes in the database is undone after it.
    """
    from registryui.catalog.upstream import get_client
    from registryui.sync.syncer import Syncer

    registry_settings = override_settings(
        REGISTRY_URL=samples_registry.process.url,
        REGISTRY_PUBLIC_HOST="registry.example.com",
        REGISTRY_RETRIES=1,
    )
    with django_db_blocker.unblock(), registry_settings:
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            run = Syncer(get_client(), concurrency=4).run()
            assert run.ok, run.error
            yield World(samples_registry, make_personas())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
