"""Reading manifests and image configs into the facts we store (no database access here).

This is the boundary where a registry's documents become our data, and a pusher controls
every byte of them: every string read here passes through ``lib.untrusted`` (NUL and lone
surrogates replaced) and every time through ``parse_timestamp`` (malformed or out of range
is unknown). Nothing past this module needs to distrust a ``FetchedManifest``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registryui.catalog import artifacts
from registryui.lib.reference import is_valid_digest
from registryui.lib.untrusted import clean_json, clean_text, parse_timestamp, text
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
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


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
    #: OCI 1.1 and artifacts (see catalog.artifacts).
    artifact_type: str = ""
    subject_digest: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    attached_kinds: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    #: An SBOM's packages, read at sync time (stored as SbomPackage rows).
    packages: list[artifacts.Package] = field(default_factory=list)

    @property
    def wants_documents(self) -> list[tuple[str, str]]:
        """(digest, media type) of the layers the sync reads: SBOMs and attestations."""
        return artifacts.wanted_documents(
            [(layer.digest, layer.media_type, layer.annotations) for layer in self.layers]
        )

    @property
    def wants_describing_config(self) -> bool:
        return bool(self.config_digest) and self.config_media_type in artifacts.DESCRIBING_CONFIGS

    @property
    def raw_text(self) -> str:
        """The manifest's bytes as storable text (what the registry served, made safe)."""
        return clean_text(self.raw.decode("utf-8", errors="replace"))

    @property
    def wants_config(self) -> bool:
        return self.kind == "image" and self.config_media_type in mediatypes.IMAGE_CONFIG_TYPES


class ManifestFormatError(ValueError):
    """The registry served a manifest we cannot read."""


#: No blob is larger than this (256 TiB). Registry 2.8 stores a manifest without checking its
#: descriptors' sizes: a negative one (some tools write -1), one above this or one that is not
#: a number is "unknown" (0), so that sizes and their sums fit the database's columns.
MAX_BLOB_SIZE = 2**48
#: Layers and index entries are numbered in small-integer columns; a 4 MiB manifest could
#: list about 40,000 of them. More than this is not an image anyone can pull.
MAX_ENTRIES = 32_767


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
    media_type = text(document.get("mediaType") or None) or text(media_type)
    fetched = FetchedManifest(
        digest=digest, media_type=media_type, size=len(raw), raw=raw, kind="other"
    )
    subject = document.get("subject")
    if isinstance(subject, dict) and subject.get("digest"):
        fetched.subject_digest = _digest(subject["digest"])
    fetched.annotations = _annotations(document.get("annotations"))
    if media_type in mediatypes.INDEX_TYPES or (
        "manifests" in document and "config" not in document
    ):
        fetched.kind = "index"
        entries = _entries(document.get("manifests"), "index entries")
        for entry in entries:
            platform = entry.get("platform") or {}
            annotations = entry.get("annotations") or {}
            os_name = text(platform.get("os") or None)
            architecture = text(platform.get("architecture") or None)
            fetched.children.append(
                ChildEntry(
                    digest=_digest(entry["digest"]),
                    media_type=text(entry.get("mediaType") or None),
                    size=_size(entry.get("size")),
                    os=os_name,
                    architecture=architecture,
                    variant=text(platform.get("variant") or None),
                    os_version=text(platform.get("os.version") or None),
                    is_attestation=(
                        annotations.get("vnd.docker.reference.type") == "attestation-manifest"
                        or (os_name, architecture) == ("unknown", "unknown")
                    ),
                )
            )
    elif media_type in mediatypes.IMAGE_TYPES or "config" in document:
        fetched.kind = "image"
        config = document.get("config") or {}
        fetched.config_digest = _digest(config.get("digest") or "") if config.get("digest") else ""
        fetched.config_media_type = text(config.get("mediaType") or None)
        fetched.config_size = _size(config.get("size"))
        fetched.layers = [
            LayerEntry(
                digest=_digest(layer["digest"]),
                size=_size(layer.get("size")),
                media_type=text(layer.get("mediaType") or None),
                annotations=_annotations(layer.get("annotations")),
            )
            for layer in _entries(document.get("layers"), "layers")
        ]
        fetched.total_size = fetched.config_size + sum(layer.size for layer in fetched.layers)
    elif media_type in mediatypes.SCHEMA1_TYPES:
        # Schema 1 carries no sizes and no separate config; show what little it has.
        fetched.architecture = text(document.get("architecture") or None)
    fetched.artifact_type = artifacts.artifact_type_of(
        text(document.get("artifactType") or None), fetched.config_media_type
    )
    fetched.attached_kinds = artifacts.attached_kinds(
        fetched.artifact_type,
        [(layer.media_type, layer.annotations) for layer in fetched.layers],
        bool(fetched.subject_digest),
    )
    if fetched.artifact_type and not fetched.attached_kinds and fetched.layers:
        fetched.details["files"] = artifacts.files_of(
            [(x.digest, x.media_type, x.size, x.annotations) for x in fetched.layers]
        )
    return fetched


#: Annotations kept per manifest or layer, and the length of each value (a cosign
#: certificate is a few KiB of PEM; a bundle, with its log entry, a few more).
MAX_ANNOTATIONS = 64
MAX_ANNOTATION_VALUE = 16_384


def _annotations(value: Any) -> dict[str, str]:
    return {
        text(k)[:255]: text(v)[:MAX_ANNOTATION_VALUE]
        for k, v in list(_mapping(value).items())[:MAX_ANNOTATIONS]
        if isinstance(v, str)
    }


def apply_documents(fetched: FetchedManifest, documents: list[tuple[str, str, bytes]]) -> None:
    """Fill an SBOM's packages, a provenance's facts from the layers read at sync time:
    (digest, media type, bytes) each; a document we cannot read is noted, never an error."""
    for digest, media_type, body in documents:
        found = artifacts.read_document(media_type, body)
        summary = found.summary(digest, media_type, len(body))
        if found.packages is not None and "sbom" not in fetched.details:
            fetched.details["sbom"] = summary
            fetched.packages = found.packages
        elif found.provenance is not None and "provenance" not in fetched.details:
            fetched.details["provenance"] = {**summary, **found.provenance}
        else:
            fetched.details.setdefault("documents", []).append(summary)


def note_unread_document(fetched: FetchedManifest, digest: str, problem: str) -> None:
    fetched.details.setdefault("documents", []).append(
        {"blob": digest, "problem": clean_text(problem)}
    )


def apply_describing_config(fetched: FetchedManifest, raw_config: bytes) -> None:
    """A Helm chart's or WASM module's config: what the artifact is (name, version, ...)."""
    fetched.details["config"] = artifacts.describing_config(fetched.config_media_type, raw_config)


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
    fetched.os = text(document.get("os") or None)
    fetched.architecture = text(document.get("architecture") or None)
    fetched.variant = text(document.get("variant") or None)
    fetched.labels = {
        text(k): text(v) for k, v in _mapping(section.get("Labels")).items() if v is not None
    }
    # JSON columns hold what the pages show: every string in them cleaned, keys included.
    fetched.config = clean_json(
        {
            "Entrypoint": section.get("Entrypoint"),
            "Cmd": section.get("Cmd"),
            "Env": _list(section.get("Env")),
            "ExposedPorts": sorted(text(k) for k in _mapping(section.get("ExposedPorts"))),
            "WorkingDir": section.get("WorkingDir") or "",
            "User": section.get("User") or "",
            "Volumes": sorted(text(k) for k in _mapping(section.get("Volumes"))),
            "StopSignal": section.get("StopSignal") or "",
        }
    )
    fetched.history = [
        {
            # Kept as text for the page, but only when it reads as a time: a date we
            # cannot place is shown as unknown rather than as whatever the pusher wrote.
            "created": _history_time(entry.get("created")),
            "created_by": text(entry.get("created_by") or None),
            "comment": text(entry.get("comment") or None),
            "empty_layer": bool(entry.get("empty_layer")),
        }
        for entry in _list(document.get("history"))
        if isinstance(entry, dict)
    ]
    fetched.platforms = fetched_platform(fetched)


def _history_time(value: Any) -> str:
    parsed = parse_timestamp(value)
    return parsed.isoformat().replace("+00:00", "Z") if parsed else ""


def _digest(value: Any) -> str:
    """A descriptor's digest; anything else makes the document unreadable (a digest ends up
    in URLs and in requests to the registry)."""
    if not isinstance(value, str) or not is_valid_digest(value):
        raise ValueError(f"not a digest: {text(value)[:80]!r}")
    return value


def _entries(value: Any, what: str) -> list[dict[str, Any]]:
    entries = _list(value)
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"{len(entries)} {what}, more than {MAX_ENTRIES}")
    return entries


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
