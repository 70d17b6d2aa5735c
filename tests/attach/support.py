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


def attached_pages(audit, pushed: dict[str, str]) -> None:
    """The pages of issue 17; also part of ``journey()`` in tests/browser/test_audit.py."""
    signed = pushed["team-a/signed:1.0"]
    att = pushed["team-a/signed:att"]
    for path, name in (
        ("/r/team-a/signed", "attach-tag-list"),
        ("/r/team-a/signed?attached=shown", "attach-tag-list-shown"),
        ("/r/team-a/signed:1.0", "attach-tag"),
        (f"/r/team-a/signed@{att}", "attach-attestation"),
        (f"/r/team-a/signed@{att}/-/sbom", "attach-sbom"),
        (f"/r/team-a/signed@{att}/-/sbom?q=lib", "attach-sbom-filtered"),
        (f"/r/team-a/signed@{pushed['team-a/signed:sig']}", "attach-signature"),
        ("/r/team-a/base:bookworm", "attach-base"),
        ("/r/team-a/charts/app:0.3.1", "attach-helm"),
        ("/r/team-a/files:v1", "attach-files"),
        ("/search/?q=signed:no", "attach-search-unsigned"),
        ("/search/?q=openssl", "attach-search-package"),
    ):
        audit.visit("a_viewer", path, name)
    audit.visit("a_deleter", f"/r/team-a/signed@{signed}/-/delete-image", "attach-delete-image")
