"""The sample registry of the suite, shared by the browse, teams and browser tests.

A real registry holding ``push_samples`` and a few tags that share digests across
repositories, started once per session (per xdist worker) by ``start_samples``; the fixtures
``samples`` and ``samples_registry`` (registered in tests/conftest.py) differ only in those
extra tags. Tests that let a mutation through put the storage back with ``restore_if_written``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import override_settings

from registryui.devtools.images import Layout, skopeo_copy, skopeo_digest
from registryui.devtools.registry import AccessLine, RegistryProcess
from registryui.devtools.samples import push_samples

PUBLIC_HOST = "registry.example.com"
#: Requests that change a registry's state.
WRITES = {"PUT", "POST", "PATCH", "DELETE"}


@dataclass
class Samples:
    """A running registry holding the samples, the digest of every pushed reference, and a
    copy of its storage to go back to."""

    process: RegistryProcess
    digests: dict[str, str]
    root: Path
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


#: Tags pushed after the samples, each sharing its digest with a sample in another repository:
#: (source in the samples layout, target, original, docker format).
BORROWED = ("api-1.5", "team-b/worker:borrowed", "team-a/api:1.5", False)
#: A canary that only a superuser may see.
VAULT = ("hello", "secret/vault:latest", "hello:latest", False)
WORKER_COPY = ("worker-1", "team-a/api:worker-copy", "team-b/worker:v1", True)


def start_samples(root: Path, extra_tags) -> Samples:
    """Start a registry, push the samples and ``extra_tags``, and snapshot its storage.

    The caller stops ``process``. The digests cover every pushed reference.
    """
    process = RegistryProcess(root / "registry").start()
    try:
        pushed = push_samples(process.host, root)
        layout = Layout(root / "samples-layout")
        for source, target, _, docker_format in extra_tags:
            skopeo_copy(layout, source, f"{process.host}/{target}", docker_format=docker_format)
        digests = dict(pushed.digests)
        for reference in (
            "hello:latest",
            "team-b/worker:v1",
            "team-b/worker:v2",
            "platform/tools/builder:2026.11",
        ):
            digests[reference] = skopeo_digest(f"{process.host}/{reference}")
        for _, copy, original, _ in extra_tags:
            digests[copy] = digests[original]
            assert skopeo_digest(f"{process.host}/{copy}") == digests[original]
        process.stop()
        snapshot = root / "storage-snapshot"
        shutil.copytree(process.storage, snapshot)
        process.start()
    except BaseException:
        process.stop()
        raise
    return Samples(process, digests, root, snapshot)


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Iterator[Samples]:
    """The samples of the browse and browser tests, with ``team-b/worker:borrowed`` (other
    tags on this image, elsewhere) and ``secret/vault:latest``."""
    started = start_samples(tmp_path_factory.mktemp("samples"), [BORROWED, VAULT])
    try:
        yield started
    finally:
        started.process.stop()


@pytest.fixture(scope="session")
def samples_registry(tmp_path_factory) -> Iterator[Samples]:
    """The samples of the permission matrix, with ``secret/vault:latest`` and
    ``team-a/api:worker-copy`` (Docker format), so that "other tags on this image" and digest
    searches can leak. A variant, not a second copy: the matrix's expectations list exactly
    these tags, and the browse tests' list theirs."""
    started = start_samples(tmp_path_factory.mktemp("samples-matrix"), [VAULT, WORKER_COPY])
    try:
        yield started
    finally:
        started.process.stop()


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
