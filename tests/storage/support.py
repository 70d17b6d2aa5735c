"""A registry scenario of shared layers for the storage tests: images built on two base
layers, across repositories and namespaces, an image copied into a second repository and a
two-platform index, each layer with incompressible padding so that blob sizes are exact."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from registryui.catalog.models import IndexChild, Manifest, Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.images import ImageSpec, Layout, Platform, skopeo_copy
from registryui.devtools.registry import RegistryProcess
from registryui.sync.syncer import Syncer

BASE_OS = {"base/os.bin": bytes(range(256)) * 200}  # 51,200 bytes, compresses a little
BASE_RUNTIME = {"base/runtime.bin": b"runtime " * 4000}


def spec(name: str, *base: dict[str, bytes], size: int = 6000, **kwargs) -> ImageSpec:
    return ImageSpec(
        files={"app.txt": name.encode()},
        base=base,
        layer_padding=size,
        labels={"n": name},
        **kwargs,
    )


#: reference → (layout name, spec or None for an index built below)
IMAGES = {
    "team-a/api:1": spec("api-1", BASE_OS),
    "team-a/api:2": spec("api-2", BASE_OS, BASE_RUNTIME),
    "team-a/web:1": spec("web-1", BASE_OS, BASE_RUNTIME, size=9000),
    "team-b/worker:1": spec("worker-1", BASE_RUNTIME, size=12000),
    "secret/vault:1": spec("vault-1", BASE_OS, size=3000),
    "hello:latest": spec("hello", size=2000),
}
#: Copies of an image into another repository (the manifest and its blobs are shared).
COPIES = {"team-b/worker:api-copy": "team-a/api:1"}
INDEX = "team-b/tools:1"


@dataclass
class Scenario:
    registry: RegistryProcess
    layout: Layout
    root: Path
    snapshot: Path | None = None
    names: dict[str, str] = field(default_factory=dict)

    def push_all(self) -> None:
        for reference, image in IMAGES.items():
            self.push(reference, image)
        for copy, original in COPIES.items():
            skopeo_copy(self.layout, self.names[original], f"{self.registry.host}/{copy}")
        self.layout.add_index(
            "tools",
            [
                spec("tools-amd64", BASE_OS, size=4000),
                spec("tools-arm64", BASE_OS, size=4500, platform=Platform("linux", "arm64", "v8")),
            ],
        )
        skopeo_copy(self.layout, "tools", f"{self.registry.host}/{INDEX}", all_platforms=True)

    def push(self, reference: str, image: ImageSpec) -> None:
        name = reference.replace("/", "-").replace(":", "-")
        self.layout.add_image(name, image)
        self.names[reference] = name
        skopeo_copy(self.layout, name, f"{self.registry.host}/{reference}")

    def sync(self):
        run = Syncer(get_client(), concurrency=4).run()
        assert run.ok, run.error
        return run

    def save(self) -> None:
        self.registry.stop()
        self.snapshot = self.root / "storage-snapshot"
        shutil.copytree(self.registry.storage, self.snapshot)
        self.registry.start()

    def restore(self) -> None:
        assert self.snapshot is not None
        self.registry.stop()
        shutil.rmtree(self.registry.storage)
        shutil.copytree(self.snapshot, self.registry.storage)
        self.registry.start()

    def delete_repositories(self, names: list[str]) -> None:
        """Delete every manifest the database knows in these repositories (tagged ones and
        the platform images of tagged indexes), as deleting the repositories would."""
        client = get_client()
        for name in names:
            tagged = set(
                Tag.objects.filter(repository__name=name).values_list("manifest_id", flat=True)
            )
            children = set(
                IndexChild.objects.filter(index_id__in=tagged).values_list("child_id", flat=True)
            )
            for digest in Manifest.objects.filter(id__in=tagged | children).values_list(
                "digest", flat=True
            ):
                client.delete_manifest(name, digest)

    def bytes_after_gc(self) -> int:
        self.registry.stop()
        self.registry.garbage_collect()
        remaining = self.registry.blob_bytes()
        self.registry.start()
        return remaining
