"""The sample images of the demo and of many tests: two teams, shared digests, a multi-arch
index, a Docker schema2 image and a nested name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .images import ImageSpec, Layout, Platform, skopeo_copy


@dataclass
class Pushed:
    """What a push produced: reference → digest of the manifest the registry stores."""

    digests: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, reference: str) -> str:
        return self.digests[reference]


def push_samples(host: str, workdir: Path, *, creds: str | None = None) -> Pushed:
    layout = Layout(Path(workdir) / "samples-layout")
    pushed = Pushed()
    source = "https://git.example.com/team-a/api"

    def push(tag: str, reference: str, **kwargs) -> None:
        skopeo_copy(layout, tag, f"{host}/{reference}", creds=creds, **kwargs)

    api_14 = layout.add_image(
        "api-1.4",
        ImageSpec(
            files={"app.py": b"print('api 1.4')\n"},
            layers=2,
            labels={
                "org.opencontainers.image.source": source,
                "org.opencontainers.image.version": "1.4",
            },
            entrypoint=["python", "/layer0/app.py"],
            cmd=["--port", "8080"],
            exposed_ports=["8080/tcp"],
            working_dir="/srv",
            user="1000:1000",
            env=["PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=production"],
            created="2026-10-01T10:00:00Z",
        ),
    )
    push("api-1.4", "team-a/api:1.4")
    pushed.digests["team-a/api:1.4"] = api_14["digest"]

    api_15 = layout.add_image(
        "api-1.5",
        ImageSpec(
            files={"app.py": b"print('api 1.5')\n"},
            layers=2,
            labels={
                "org.opencontainers.image.source": source,
                "org.opencontainers.image.version": "1.5",
            },
            entrypoint=["python", "/layer0/app.py"],
            exposed_ports=["8080/tcp"],
            created="2026-11-01T10:00:00Z",
        ),
    )
    for tag in ("1.5", "latest", "stable"):  # several tags on one image
        push("api-1.5", f"team-a/api:{tag}")
        pushed.digests[f"team-a/api:{tag}"] = api_15["digest"]

    web = layout.add_index(
        "web-2.0",
        [
            ImageSpec(
                files={"index.html": b"<h1>amd64</h1>"},
                platform=Platform("linux", "amd64"),
                created="2026-11-10T08:00:00Z",
            ),
            ImageSpec(
                files={"index.html": b"<h1>arm64</h1>"},
                platform=Platform("linux", "arm64", "v8"),
                created="2026-11-10T08:00:00Z",
            ),
        ],
    )
    for tag in ("2.0", "latest"):
        push("web-2.0", f"team-a/web:{tag}", all_platforms=True)
        pushed.digests[f"team-a/web:{tag}"] = web["digest"]

    # Docker schema2: skopeo converts the OCI layout; the registry stores the converted bytes.
    layout.add_image(
        "worker-1",
        ImageSpec(
            files={"worker.sh": b"#!/bin/sh\necho work\n"},
            cmd=["/worker.sh"],
            created="2026-09-15T12:00:00Z",
        ),
    )
    layout.add_image(
        "worker-2",
        ImageSpec(
            files={"worker.sh": b"#!/bin/sh\necho more work\n"},
            cmd=["/worker.sh"],
            created="2026-11-20T12:00:00Z",
        ),
    )
    push("worker-1", "team-b/worker:v1", docker_format=True)
    push("worker-2", "team-b/worker:v2", docker_format=True)

    layout.add_image(
        "builder",
        ImageSpec(
            files={"build.sh": b"#!/bin/sh\nmake\n"},
            layers=3,
            labels={"org.opencontainers.image.source": "https://git.example.com/platform/tools"},
            created="2026-11-25T09:30:00Z",
        ),
    )
    push("builder", "platform/tools/builder:2026.11")

    layout.add_image("hello", ImageSpec(files={"hello.txt": b"hello, world\n"}))
    push("hello", "hello:latest")
    return pushed


def push_attached(registry_url: str) -> dict[str, str]:
    """Signed images (cosign and notation), SBOMs, provenance, a Helm chart and a generic
    artifact, as the tools write them (``devtools.artifacts``); for ``make demo``. Kept apart
    from ``push_samples``, whose exact contents many tests count on."""
    from registryui.registry import RegistryClient

    from .artifacts import push_attached_samples

    with RegistryClient(registry_url) as client:
        return push_attached_samples(client)
