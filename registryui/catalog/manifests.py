"""Reading manifests and image configs into the facts we store (no database access here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registryui.lib.untrusted import parse_timestamp
from registryui.registry import mediatypes


@dataclass(frozen=True)
class ChildEntry:
    digest: str
    media_type: str
    size: int
    os: str = ""
    architecture: str = ""
    variant: str = ""
    os_version: str = ""
    is_attestation: bool = False

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class LayerEntry:
    digest: str
    size: int
    media_type: str = ""


@dataclass
class FetchedManifest:
    """One manifest as fetched from the registry, with its config facts, ready to store."""

    digest: str
    media_type: str
    size: int
    raw: bytes
    kind: str  # "image" | "index" | "other"
    config_digest: str = ""
    config_media_type: str = ""
    config_size: int = 0
    layers: list[LayerEntry] = field(default_factory=list)
    children: list[ChildEntry] = field(default_factory=list)
    created: datetime | None = None
    os: str = ""
    architecture: str = ""
    variant: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: For an index: filled in from the children once they are known.
    platforms: str = ""
    total_size: int = 0

    @property
    def wants_config(self) -> bool:
        return self.kind == "image" and self.config_media_type in mediatypes.IMAGE_CONFIG_TYPES


class ManifestFormatError(ValueError):
    """The registry served a manifest we cannot read."""


#: No blob is larger than this (256 TiB). Registry 2.8 stores a manifest without checking its
#: descriptors' sizes: a negative one (some tools write -1), one above this or one that is not
#: a number is "unknown" (0), so that sizes and their sums fit the database's columns.
MAX_BLOB_SIZE = 2**48


def _size(value: Any) -> int:
    """A descriptor's ``size`` as a byte count; 0 when it is missing or not a plausible one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BLOB_SIZE:
        return value
    return 0


def parse_manifest(digest: str, media_type: str, raw: bytes) -> FetchedManifest:
    """Read a manifest's facts; ManifestFormatError when it is not a document we can read."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ManifestFormatError(f"manifest {digest} is not JSON") from exc
    if not isinstance(document, dict):
        raise ManifestFormatError(f"manifest {digest} is not a JSON object")
    try:
        return _parse_document(digest, media_type, raw, document)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A field of the wrong shape (an entry that is not an object, a missing digest, ...).
        raise ManifestFormatError(f"manifest {digest} is malformed ({exc!r})") from exc


def _parse_document(
    digest: str, media_type: str, raw: bytes, document: dict[str, Any]
) -> FetchedManifest:
    media_type = document.get("mediaType") or media_type
    fetched = FetchedManifest(
        digest=digest, media_type=media_type, size=len(raw), raw=raw, kind="other"
    )
    if media_type in mediatypes.INDEX_TYPES or (
        "manifests" in document and "config" not in document
    ):
        fetched.kind = "index"
        for entry in document.get("manifests") or []:
            platform = entry.get("platform") or {}
            annotations = entry.get("annotations") or {}
            os_name = str(platform.get("os") or "")
            architecture = str(platform.get("architecture") or "")
            fetched.children.append(
                ChildEntry(
                    digest=str(entry["digest"]),
                    media_type=str(entry.get("mediaType") or ""),
                    size=_size(entry.get("size")),
                    os=os_name,
                    architecture=architecture,
                    variant=str(platform.get("variant") or ""),
                    os_version=str(platform.get("os.version") or ""),
                    is_attestation=(
                        annotations.get("vnd.docker.reference.type") == "attestation-manifest"
                        or (os_name, architecture) == ("unknown", "unknown")
                    ),
                )
            )
    elif media_type in mediatypes.IMAGE_TYPES or "config" in document:
        fetched.kind = "image"
        config = document.get("config") or {}
        fetched.config_digest = str(config.get("digest") or "")
        fetched.config_media_type = str(config.get("mediaType") or "")
        fetched.config_size = _size(config.get("size"))
        fetched.layers = [
            LayerEntry(
                digest=str(layer["digest"]),
                size=_size(layer.get("size")),
                media_type=str(layer.get("mediaType") or ""),
            )
            for layer in document.get("layers") or []
        ]
        fetched.total_size = fetched.config_size + sum(layer.size for layer in fetched.layers)
    elif media_type in mediatypes.SCHEMA1_TYPES:
        # Schema 1 carries no sizes and no separate config; show what little it has.
        fetched.architecture = str(document.get("architecture") or "")
    return fetched


def apply_config(fetched: FetchedManifest, raw_config: bytes) -> None:
    """Fill an image's facts from its config blob (created, platform, labels, history, ...).

    The registry stores any bytes as a config without looking at them: a field of another
    shape than Docker writes is left empty, never an error (the image is still listed).
    """
    try:
        document = json.loads(raw_config)
    except ValueError:
        return
    if not isinstance(document, dict):
        return
    section = _mapping(document.get("config"))
    fetched.created = parse_timestamp(document.get("created"))
    fetched.os = str(document.get("os") or "")
    fetched.architecture = str(document.get("architecture") or "")
    fetched.variant = str(document.get("variant") or "")
    fetched.labels = {str(k): str(v) for k, v in _mapping(section.get("Labels")).items()}
    fetched.config = {
        "Entrypoint": section.get("Entrypoint"),
        "Cmd": section.get("Cmd"),
        "Env": _list(section.get("Env")),
        "ExposedPorts": sorted(_mapping(section.get("ExposedPorts"))),
        "WorkingDir": section.get("WorkingDir") or "",
        "User": section.get("User") or "",
        "Volumes": sorted(_mapping(section.get("Volumes"))),
        "StopSignal": section.get("StopSignal") or "",
    }
    fetched.history = [
        {
            "created": entry.get("created") or "",
            "created_by": entry.get("created_by") or "",
            "comment": entry.get("comment") or "",
            "empty_layer": bool(entry.get("empty_layer")),
        }
        for entry in _list(document.get("history"))
        if isinstance(entry, dict)
    ]
    fetched.platforms = fetched_platform(fetched)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def fetched_platform(fetched: FetchedManifest) -> str:
    return "/".join(p for p in (fetched.os, fetched.architecture, fetched.variant) if p)


def summarise_index(index: FetchedManifest, children: dict[str, Any]) -> None:
    """Fill an index's platforms, total size and created from its children.

    ``children`` maps a child digest to anything with ``total_size`` and ``created``
    (a FetchedManifest or a stored Manifest).
    """
    platforms: list[str] = []
    total, created = 0, None
    for entry in index.children:
        child = children.get(entry.digest)
        if child is not None:
            total += child.total_size or 0
            if (
                not entry.is_attestation
                and child.created
                and (created is None or child.created > created)
            ):
                created = child.created
        if not entry.is_attestation and entry.platform and entry.platform not in platforms:
            platforms.append(entry.platform)
    index.platforms = ", ".join(platforms)[:512]
    index.total_size = total
    index.created = created
