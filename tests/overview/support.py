"""A registry with images that carry (or lack) OCI labels, for the overview tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registryui.devtools.images import ImageSpec, Layout, Platform, skopeo_copy
from registryui.devtools.registry import RegistryProcess

API_LABELS = {
    "org.opencontainers.image.description": "Forecasts by postcode <b>fast</b>",
    "org.opencontainers.image.source": "https://git.example.com/team-a/api",
    "org.opencontainers.image.documentation": "javascript:alert(1)",
    "org.opencontainers.image.licenses": "Apache-2.0",
}
WEB_LABELS = {
    "org.opencontainers.image.description": "The team-a web front end",
    "org.opencontainers.image.licenses": "MIT",
}


@dataclass
class Labelled:
    process: RegistryProcess
    layout: Layout

    def push(self, tag: str, target: str, **kwargs) -> None:
        skopeo_copy(self.layout, tag, f"{self.process.host}/{target}", **kwargs)


def start_labelled(root: Path) -> Labelled:
    """team-a/api:1.0 (an image with labels), team-a/web:latest (an index whose platform images
    carry labels), team-b/worker:v1 and hello:latest (no labels)."""
    process = RegistryProcess(root / "registry").start()
    layout = Layout(root / "layout")
    layout.add_image("api", ImageSpec(files={"api": b"api\n"}, labels=API_LABELS))
    layout.add_index(
        "web",
        [
            ImageSpec(files={"web": b"amd64\n"}, labels=WEB_LABELS),
            ImageSpec(
                files={"web": b"arm64\n"},
                labels=WEB_LABELS,
                platform=Platform(architecture="arm64", variant="v8"),
            ),
        ],
    )
    layout.add_image("plain", ImageSpec(files={"plain": b"plain\n"}))
    labelled = Labelled(process, layout)
    try:
        labelled.push("api", "team-a/api:1.0")
        labelled.push("web", "team-a/web:latest", all_platforms=True)
        labelled.push("plain", "team-b/worker:v1")
        labelled.push("plain", "hello:latest")
    except BaseException:
        process.stop()
        raise
    return labelled
