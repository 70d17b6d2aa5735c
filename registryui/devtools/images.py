"""Build small, real OCI image layouts in Python and push them with skopeo.

The layouts are what ``skopeo copy oci:DIR:TAG docker://…`` reads: single-platform images,
multi-platform indexes, pushed as OCI or (``--format v2s2``) as Docker schema2.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass
class ImageSpec:
    """What goes into one single-platform image."""

    files: dict[str, bytes] = field(default_factory=lambda: {"hello.txt": b"hello\n"})
    layers: int = 1
    platform: Platform = field(default_factory=Platform)
    labels: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=lambda: ["PATH=/usr/local/bin:/usr/bin:/bin"])
    entrypoint: list[str] | None = None
    cmd: list[str] | None = field(default_factory=lambda: ["/bin/sh"])
    exposed_ports: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    created: str = "2026-01-02T03:04:05.123456789Z"
    layer_padding: int = 0  # extra bytes of incompressible data, to make layers of a known size
    #: Layers below the image's own, each from its files alone: images given the same base
    #: share those layers (blobs) as images built FROM one base image do.
    base: tuple[dict[str, bytes], ...] = ()


def _tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A deterministic gzip-compressed tar; returns (compressed bytes, diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    raw_bytes = raw.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw_bytes)
    return compressed.getvalue(), "sha256:" + hashlib.sha256(raw_bytes).hexdigest()


class Layout:
    """An OCI image layout folder; each ``add_*`` writes blobs and names the result by tag."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self._index_path = self.path / "index.json"
        if not self._index_path.exists():
            self._write_index([])

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        self._index_path.write_text(
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        )

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def _json_blob(self, document: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        data = json.dumps(document, separators=(",", ":")).encode()
        return data, self.blob(data)

    def image(self, spec: ImageSpec) -> dict[str, Any]:
        """Write one image's blobs; returns its manifest descriptor (mediaType, digest, size)."""
        layer_descriptors, diff_ids, history = [], [], []
        for files in spec.base:
            compressed, diff_id = _tar_gz(files)
            layer_descriptors.append({"mediaType": OCI_LAYER, **self.blob(compressed)})
            diff_ids.append(diff_id)
            history.append({"created": spec.created, "created_by": "/bin/sh -c #(nop) ADD base /"})
        for index in range(spec.layers):
            files = {f"layer{index}/{name}": data for name, data in spec.files.items()}
            if spec.layer_padding:
                seed = hashlib.sha256(repr((spec.files, index)).encode()).digest()
                files[f"layer{index}/padding.bin"] = _incompressible(seed, spec.layer_padding)
            compressed, diff_id = _tar_gz(files)
            layer_descriptors.append({"mediaType": OCI_LAYER, **self.blob(compressed)})
            diff_ids.append(diff_id)
            history.append(
                {"created": spec.created, "created_by": f"/bin/sh -c #(nop) ADD layer{index} /"}
            )
        config_section: dict[str, Any] = {"Env": spec.env}
        if spec.cmd is not None:
            config_section["Cmd"] = spec.cmd
        if spec.entrypoint is not None:
            config_section["Entrypoint"] = spec.entrypoint
        if spec.labels:
            config_section["Labels"] = spec.labels
        if spec.exposed_ports:
            config_section["ExposedPorts"] = {port: {} for port in spec.exposed_ports}
        if spec.working_dir:
            config_section["WorkingDir"] = spec.working_dir
        if spec.user:
            config_section["User"] = spec.user
        config = {
            "created": spec.created,
            **spec.platform.as_dict(),
            "config": config_section,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        _, config_descriptor = self._json_blob(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config_descriptor},
            "layers": layer_descriptors,
        }
        _, descriptor = self._json_blob(manifest)
        return {"mediaType": OCI_MANIFEST, **descriptor}

    def index(self, specs: list[ImageSpec]) -> dict[str, Any]:
        children = []
        for spec in specs:
            child = self.image(spec)
            children.append({**child, "platform": spec.platform.as_dict()})
        _, descriptor = self._json_blob(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        )
        return {"mediaType": OCI_INDEX, **descriptor}

    def tag(self, name: str, descriptor: dict[str, Any]) -> None:
        index = json.loads(self._index_path.read_text())
        manifests = [
            m
            for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != name
        ]
        manifests.append({**descriptor, "annotations": {"org.opencontainers.image.ref.name": name}})
        self._write_index(manifests)

    def add_image(self, name: str, spec: ImageSpec | None = None) -> dict[str, Any]:
        descriptor = self.image(spec or ImageSpec())
        self.tag(name, descriptor)
        return descriptor

    def add_index(self, name: str, specs: list[ImageSpec]) -> dict[str, Any]:
        descriptor = self.index(specs)
        self.tag(name, descriptor)
        return descriptor


def _incompressible(seed: bytes, size: int) -> bytes:
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out.extend(block)
    return bytes(out[:size])


def skopeo_copy(
    layout: Layout,
    tag: str,
    destination: str,
    *,
    docker_format: bool = False,
    all_platforms: bool = False,
    creds: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``skopeo copy oci:LAYOUT:TAG docker://DESTINATION`` over plain HTTP."""
    args = [SKOPEO, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
    if docker_format:
        args += ["--format", "v2s2"]
    if all_platforms:
        args += ["--all"]
    if creds is not None:
        args += ["--dest-creds", creds]
    else:
        args += ["--dest-no-creds"]
    args += [f"oci:{layout.path}:{tag}", f"docker://{destination}"]
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=120)


def skopeo_inspect_raw(reference: str, *, creds: str | None = None) -> bytes:
    args = [SKOPEO, "--insecure-policy", "inspect", "--raw", "--tls-verify=false"]
    args += ["--creds", creds] if creds is not None else ["--no-creds"]
    done = subprocess.run(
        [*args, f"docker://{reference}"], capture_output=True, check=True, timeout=60
    )
    return done.stdout


def skopeo_digest(reference: str, *, creds: str | None = None) -> str:
    """The digest the registry serves for a reference, as ``skopeo inspect --raw | sha256sum``."""
    return "sha256:" + hashlib.sha256(skopeo_inspect_raw(reference, creds=creds)).hexdigest()
