"""A real registry holding signed images, SBOMs, attestations, a Helm chart and a generic
artifact, written as cosign, notation, oras and helm write them
(``registryui.devtools.artifacts.push_attached_samples``), synced into the database."""

from __future__ import annotations

from registryui.catalog.upstream import get_client
from registryui.devtools.artifacts import push_attached_samples
from registryui.sync.syncer import Syncer


def push_and_sync() -> dict[str, str]:
    pushed = push_attached_samples(get_client())
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    return pushed
