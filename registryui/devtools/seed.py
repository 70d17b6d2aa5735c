"""Fill a registry with many repositories and tags quickly, through the registry API.

``skopeo copy`` costs a process and a dozen requests per image; tests that need 130
repositories or a repository with hundreds of tags, and the benchmark's 200 x 25, would spend
minutes pushing. Instead the blobs (one layer, one config) are uploaded once, mounted into every
other repository with one request each, and each tag gets its own small OCI manifest (made
distinct by an annotation) with one PUT. The result is a real registry with real, valid images.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from registryui.registry import RegistryClient
from registryui.registry.mediatypes import OCI_CONFIG, OCI_MANIFEST

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
NOTE_ANNOTATION = "org.registryui.seed.note"


def _layer() -> tuple[bytes, str]:
    """A tiny gzip layer and its diff id (the digest of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"seeded by registryui.devtools.seed\n"
        info = tarfile.TarInfo("seed.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue(), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


@dataclass
class Seeded:
    """What was pushed: repository → tag → manifest digest."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def tag_count(self) -> int:
        return sum(len(tags) for tags in self.tags.values())

    @property
    def digests(self) -> set[str]:
        return {digest for tags in self.tags.values() for digest in tags.values()}


class Seeder:
    """Pushes seeded images into one registry; safe to use from several threads."""

    def __init__(self, client: RegistryClient, *, created: str = "2026-06-01T12:00:00Z") -> None:
        self.client = client
        self.layer, diff_id = _layer()
        config = {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.opencontainers.image.vendor": "registryui seed"},
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "ADD seed.txt /"}],
        }
        self.config = json.dumps(config, separators=(",", ":")).encode()
        self.layer_digest = "sha256:" + hashlib.sha256(self.layer).hexdigest()
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()
        self._lock = threading.Lock()
        self._source: str | None = None  # a repository that holds both blobs
        self._ready: set[str] = set()

    def manifest(self, note: str) -> tuple[bytes, str]:
        """A valid OCI image manifest over the shared blobs, unique to ``note``."""
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.config_digest,
                "size": len(self.config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": self.layer_digest, "size": len(self.layer)}
            ],
            "annotations": {NOTE_ANNOTATION: note},
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        return body, "sha256:" + hashlib.sha256(body).hexdigest()

    def prepare(self, repository: str) -> None:
        """Make the shared blobs available in ``repository``: uploaded once, then mounted."""
        with self._lock:
            if repository in self._ready:
                return
            source = self._source
            if source is None:
                self.client.upload_blob(repository, self.layer)
                self.client.upload_blob(repository, self.config)
                self._source = repository
                self._ready.add(repository)
                return
        for digest, data in ((self.layer_digest, self.layer), (self.config_digest, self.config)):
            if not self.client.mount_blob(repository, digest, source):
                self.client.upload_blob(repository, data)
        with self._lock:
            self._ready.add(repository)

    def put(self, repository: str, tag: str, note: str | None = None) -> str:
        """Push one image under ``repository:tag``; the same ``note`` gives the same digest."""
        self.prepare(repository)
        body, digest = self.manifest(note if note is not None else f"{repository}:{tag}")
        self.client.put_manifest(repository, tag, body, OCI_MANIFEST)
        return digest

    def put_many(
        self, items: Iterable[tuple[str, str, str | None]], *, concurrency: int = 8
    ) -> Seeded:
        """Push (repository, tag, note) items in parallel; the same note gives the same digest."""
        items = list(items)
        seeded = Seeded()
        if not items:
            return seeded
        names = list(dict.fromkeys(name for name, _, _ in items))
        self.prepare(names[0])  # upload first, so that every other repository can mount
        with ThreadPoolExecutor(concurrency, thread_name_prefix="seed") as pool:
            list(pool.map(self.prepare, names))
            digests = pool.map(lambda item: self.put(*item), items)
            for (name, tag, _), digest in zip(items, digests, strict=True):
                seeded.tags.setdefault(name, {})[tag] = digest
        return seeded

    def seed(
        self,
        repositories: Iterable[str],
        tags: Iterable[str],
        *,
        concurrency: int = 8,
        shared_digest: bool = False,
    ) -> Seeded:
        """Every repository gets every tag; each tag its own digest unless ``shared_digest``."""
        names, tag_names = list(repositories), list(tags)
        items = [
            (name, tag, f"{name}:shared" if shared_digest else None)
            for name in names
            for tag in tag_names
        ]
        return self.put_many(items, concurrency=concurrency)


def seed_registry(
    client: RegistryClient,
    repositories: int,
    tags: int,
    *,
    prefix: str = "seed",
    concurrency: int = 8,
) -> Seeded:
    """``repositories`` x ``tags`` images named ``PREFIX/repo-0001:tag-001``."""
    width = max(len(str(repositories)), 4)
    names = [f"{prefix}/repo-{i:0{width}d}" for i in range(repositories)]
    tag_names = [f"tag-{i:03d}" for i in range(tags)]
    return Seeder(client).seed(names, tag_names, concurrency=concurrency)


def put_image(
    client: RegistryClient,
    repository: str,
    tag: str,
    config: bytes,
    *,
    layers: int = 1,
    seeder: Seeder | None = None,
) -> str:
    """Push an OCI image whose config blob is exactly ``config`` (any bytes: registry 2.8 does
    not look inside a config) over ``layers`` references to the seed layer; its digest.

    For images a build tool would never write: labels holding NUL, dates out of range, a
    50 MB config, ten thousand layers."""
    seeder = seeder or Seeder(client)
    seeder.prepare(repository)
    config_digest = client.upload_blob(repository, config)
    layer = {"mediaType": OCI_LAYER, "digest": seeder.layer_digest, "size": len(seeder.layer)}
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [layer] * layers,
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return client.put_manifest(repository, tag, body, OCI_MANIFEST)


def plant_manifest(storage: Path, repository: str, tag: str, body: bytes) -> str:
    """Write a manifest straight into a filesystem registry's storage and tag it; its digest.

    For what the API refuses to store but a registry may still hold (a manifest that is not
    JSON, an unsigned schema 1 manifest, data written by an older version or another tool).
    The repository must exist already (``Seeder.prepare`` it) for the catalog to list it.
    """
    hex_digest = hashlib.sha256(body).hexdigest()
    digest = f"sha256:{hex_digest}"
    v2 = storage / "docker" / "registry" / "v2"
    blob = v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    blob.mkdir(parents=True, exist_ok=True)
    (blob / "data").write_bytes(body)
    manifests = v2 / "repositories" / repository / "_manifests"
    for folder in (
        manifests / "revisions" / "sha256" / hex_digest,
        manifests / "tags" / tag / "current",
        manifests / "tags" / tag / "index" / "sha256" / hex_digest,
    ):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "link").write_text(digest)
    return digest
