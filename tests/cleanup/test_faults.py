"""Paths a real registry 2.8 cannot show on demand: a failure between the placeholder PUT and
its DELETE, and registry 3.x's DELETE by tag. The registry is real; only the client in front
of it injects the fault or plays 3.x, as each test's docstring says."""

from __future__ import annotations

import pytest

from registryui.cleanup import actions
from registryui.cleanup.actions import Actor, delete_tags
from registryui.registry import RegistryClient, RegistryError
from tests.cleanup.support import audit, repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world):
    world.image("one")
    world.push("one", "team-a/api:1.0")
    world.push("one", "team-a/api:stable")
    world.sync()
    return world


def use_client(monkeypatch, client: RegistryClient) -> None:
    monkeypatch.setattr(actions, "get_client", lambda: client)


def test_a_failed_placeholder_delete_puts_the_tag_back(api, monkeypatch):
    """Fault injected: the DELETE of the placeholder digest fails as if the registry had
    gone away between two requests; the tag must be restored to its image."""
    original = api.pushed["team-a/api:1.0"]

    class FailingSecondStep(RegistryClient):
        def delete_manifest(self, name: str, reference: str) -> None:
            if reference.startswith("sha256:") and reference != original:
                probe = self.stats["manifest_put"] == 0
                if not probe:  # the probe of a random digest happens before the PUT
                    raise RegistryError.from_code("UNAVAILABLE", status=503)
            super().delete_manifest(name, reference)

    use_client(monkeypatch, FailingSecondStep(api.registry.url, retries=0))

    execution = delete_tags(repository("team-a/api"), {"1.0": original}, Actor(name="t"))

    [outcome] = execution.outcomes
    assert outcome.result == "failed"
    assert "Nothing was deleted: 1.0 was put back on" in outcome.message
    # Deleting the untagged placeholder failed the same way: it is named, not hidden.
    assert "the untagged placeholder sha256:" in outcome.message
    assert execution.status_code == 502
    assert api.digest("team-a/api:1.0") == original
    assert api.digest("team-a/api:stable") == original
    assert sorted(api.tags("team-a/api")) == ["1.0", "stable"]
    assert audit("delete_tag")[0].result == "failed"


def test_a_registry_that_deletes_by_tag_is_asked_to(api, monkeypatch):
    """Plays registry 3.x, which removes just the tag on DELETE /manifests/<tag>: the client
    carries the request out on the real 2.8 registry (by the placeholder route) and answers
    202, as 3.x would. Registry UI must then stop there: no placeholder of its own."""
    seen: list[str] = []

    class Registry3(RegistryClient):
        def delete_manifest(self, name: str, reference: str) -> None:
            seen.append(reference)
            if reference.startswith("sha256:"):
                return super().delete_manifest(name, reference)
            from registryui.cleanup import placeholder

            stand_in = placeholder.build(name, reference)
            self.upload_blob(name, stand_in.config)
            digest = self.put_manifest(name, reference, stand_in.manifest, stand_in.media_type)
            super().delete_manifest(name, digest)

    client = Registry3(api.registry.url, retries=0)
    use_client(monkeypatch, client)

    execution = delete_tags(
        repository("team-a/api"), {"1.0": api.pushed["team-a/api:1.0"]}, Actor(name="t")
    )

    assert execution.ok, execution.error
    assert seen[0] == "1.0"
    assert client.stats["manifest_put"] == 1  # the stand-in's only: none of ours
    assert api.digest("team-a/api:1.0") is None
    assert api.digest("team-a/api:stable") == api.pushed["team-a/api:stable"]
    assert audit("delete_tag")[0].details["method"] == "tag"
