"""Helpers of the cleanup tests: the ``World`` of the ``world`` fixture (a registry, a layout of
images to push, and what is where), and the audit and registry-log queries the tests share."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from registryui.catalog.models import Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.devtools.images import ImageSpec, Layout, Platform, skopeo_copy, skopeo_digest
from registryui.devtools.registry import RegistryProcess
from registryui.sync.syncer import Syncer
from tests.support import WRITES


@dataclass
class World:
    """One registry, one OCI layout of images to push, and helpers that say what is where."""

    registry: RegistryProcess
    layout: Layout
    pushed: dict[str, str] = field(default_factory=dict)
    #: layout name → (digest, is an index) of what was added to the layout.
    built: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def image(self, name: str, *, size: int = 4000, layers: int = 1, **spec) -> str:
        """Add a single-platform image to the layout with ``size`` incompressible bytes per
        layer (so that every image's blobs are distinct and measurable); returns its name."""
        spec.setdefault("files", {"name.txt": name.encode()})
        descriptor = self.layout.add_image(
            name, ImageSpec(layers=layers, layer_padding=size, **spec)
        )
        self.built[name] = (descriptor["digest"], False)
        return name

    def index(self, name: str, platforms: list[tuple[str, str, str | None]], size: int = 3000):
        specs = [
            ImageSpec(
                files={"name.txt": f"{name} {arch}".encode()},
                platform=Platform(os_name, arch, variant),
                layer_padding=size,
            )
            for os_name, arch, variant in platforms
        ]
        descriptor = self.layout.add_index(name, specs)
        self.built[name] = (descriptor["digest"], True)
        return descriptor

    def push(self, layout_name: str, reference: str, **kwargs) -> str:
        skopeo_copy(self.layout, layout_name, f"{self.registry.host}/{reference}", **kwargs)
        digest, is_index = self.built.get(layout_name, ("", False))
        if (
            not digest
            or kwargs.get("docker_format")
            or (is_index and not kwargs.get("all_platforms"))
        ):
            # skopeo converted the image or picked one platform: ask what it stored.
            digest = skopeo_digest(f"{self.registry.host}/{reference}")
        self.pushed[reference] = digest
        return digest

    def digest(self, reference: str) -> str | None:
        """What the registry serves for a reference now (``skopeo inspect``); None if 404."""
        try:
            return skopeo_digest(f"{self.registry.host}/{reference}")
        except subprocess.CalledProcessError:
            return None

    def sync(self):
        run = Syncer(get_client(), concurrency=4).run()
        assert run.ok, run.error or list(run.errors.values_list("message", flat=True))
        return run

    def tags(self, repository: str) -> dict[str, str]:
        """The database's tags of a repository: name → digest."""
        return dict(
            Tag.objects.filter(repository__name=repository).values_list("name", "manifest__digest")
        )

    def registry_tags(self, repository: str) -> list[str]:
        return sorted(get_client().list_tags(repository))

    def blob_bytes_after_gc(self) -> int:
        """Stop the registry, garbage-collect, count the blob bytes left, start it again."""
        self.registry.stop()
        self.registry.garbage_collect()
        remaining = self.registry.blob_bytes()
        self.registry.start()
        return remaining


def audit(action: str | None = None, **filters) -> list[AuditEntry]:
    entries = AuditEntry.objects.order_by("id")
    if action:
        entries = entries.filter(action=action)
    return list(entries.filter(**filters))


def repository(name: str) -> Repository:
    return Repository.objects.get(name=name)


def manipulating_requests(lines) -> list:
    """The access-log lines of requests that could change the registry."""
    return [line for line in lines if line.method in WRITES]
