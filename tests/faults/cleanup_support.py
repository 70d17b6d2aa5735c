"""Shared set-up of the cleanup fault tests: a real registry 2.8 behind a ``FaultProxy``.

The app talks to the proxy; the tests read the registry's truth directly (``direct``), so a
fault the proxy injects never hides what the registry really holds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections
from django.test import Client

from registryui.catalog.models import Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.faultrules import Delay
from registryui.devtools.faults import FaultProxy
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.mediatypes import OCI_MANIFEST
from registryui.sync.syncer import Syncer

EVENTS_TOKEN = "cleanup-faults-token"


@dataclass
class Stage:
    registry: RegistryProcess
    proxy: FaultProxy
    direct: RegistryClient
    seeder: Seeder

    def put(self, repository: str, tag: str, note: str) -> str:
        """Push straight to the registry (never through the faults); the same note gives the
        same digest."""
        return self.seeder.put(repository, tag, note=note)

    def head(self, repository: str, reference: str) -> str | None:
        """What the registry itself serves for a tag or digest (None for 404)."""
        try:
            return self.direct.head_manifest(repository, reference).digest
        except RegistryError as exc:
            if exc.missing:
                return None
            raise

    def tags(self, repository: str) -> list[str]:
        return sorted(self.direct.list_tags(repository))

    def db_tags(self, repository: str) -> dict[str, str]:
        return dict(
            Tag.objects.filter(repository__name=repository).values_list("name", "manifest__digest")
        )

    def sync(self):
        self.proxy.clear()
        run = Syncer(get_client(), concurrency=2).run()
        assert run.ok, run.error
        return run

    def placeholders_in(self, repository: str) -> list[str]:
        """Digests the app DELETEd or PUT that are not the repository's images (the proxy saw
        them): the throw-away manifests of tag deletes."""
        paths = [s.path for s in self.proxy.seen if s.method == "DELETE"]
        prefix = f"/v2/{repository}/manifests/sha256:"
        return [p.rpartition("/")[2] for p in paths if p.startswith(prefix)]


def stage(settings, registry_factory) -> Stage:
    registry = registry_factory()
    proxy = FaultProxy(registry.url).start()
    settings.REGISTRY_URL = proxy.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 0
    settings.SYNC_CONCURRENCY = 2
    settings.REGISTRY_EVENTS_TOKEN = EVENTS_TOKEN
    direct = RegistryClient(registry.url, retries=0)
    return Stage(registry, proxy, direct, Seeder(direct))


def push_notification(repository: str, tag: str, digest: str, size: int) -> bytes:
    """The notification registry 2.8 posts for a manifest pushed by tag."""
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "push",
        "target": {
            "mediaType": OCI_MANIFEST,
            "size": size,
            "digest": digest,
            "length": size,
            "repository": repository,
            "url": f"http://registry.test/v2/{repository}/manifests/{digest}",
            "tag": tag,
        },
        "request": {"id": str(uuid.uuid4()), "method": "PUT", "useragent": "skopeo"},
        "actor": {},
        "source": {"addr": "registry.test:5000", "instanceID": str(uuid.uuid4())},
    }
    return json.dumps({"events": [event]}).encode()


def lose_a_push_to_the_delete(stage: Stage, repository: str, tag: str) -> dict[str, str]:
    """Make the next delete of ``tag`` take it from a push it cannot put back: the delete's
    fresh HEAD (its second of the tag; the first re-checks the confirmation) is held back 1 s
    while the tag is pushed and the push notified, and every PUT of the tag after the
    placeholder's is refused. ``["digest"]`` of the answer is the pushed image, once pushed."""
    pushed: dict[str, str] = {}

    def push_meanwhile() -> None:
        pushed["digest"] = stage.put(repository, tag, "pushed meanwhile")
        size = stage.direct.head_manifest(repository, pushed["digest"]).size
        Client().post(
            "/events/registry",
            push_notification(repository, tag, pushed["digest"], size),
            content_type="application/vnd.docker.distribution.events.v1+json",
            headers={"Authorization": f"Bearer {EVENTS_TOKEN}"},
        )
        connections.close_all()

    path = rf"/v2/{repository}/manifests/{tag}$"
    stage.proxy.route(
        Delay(stage.proxy, method="HEAD", path=path, after=1, seconds=1.0, during=push_meanwhile)
    )
    stage.proxy.fail(503, method="PUT", path=path, after=1)
    return pushed
