"""Copy an image (or a multi-platform index) to another repository: ``team-a/api:1.4`` →
``prod/api:1.4``, without uploading a single layer again.

Registry storage keeps each blob once; a repository only links to it. A cross-repository
mount (``POST /v2/<to>/blobs/uploads/?mount=<digest>&from=<from>``, 201 when mounted) adds
the link, so the copy sends manifests only:

1. for an index, each platform manifest first (children before their index, so that the
   index never names a manifest the target lacks): mount its config and layers, then PUT
   its exact bytes by digest;
2. the image's own blobs likewise, then its exact bytes under the new tag (the same digest).

The manifests' bytes are the stored ones when they still hash to their digest (else read
again from the source); which blobs to mount is read from those bytes, checked as
untrusted input. A blob the source cannot lend (it is not there) stops the copy before any
manifest is written. The target tag is HEADed first: moving a tag that points elsewhere
needs a confirmation that showed its old digest, as a retag does. The new tag is mirrored in
the database through ``catalog.store`` and the copy is audited (``COPY_IMAGE``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import models

from registryui.catalog import store
from registryui.catalog.models import Manifest, Repository
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.lib.reference import is_valid_digest, short_digest
from registryui.registry import RegistryError
from registryui.registry.client import sha256_digest

from .messages import describe
from .outcomes import Actor, Step
from .retag import manifest_bytes

#: Nesting an index may have (an index of indexes); deeper is refused as hostile.
MAX_DEPTH = 3


class CopyStatus(models.TextChoices):
    COPIED = "copied", "copied"
    MOVED = "moved", "copied, tag moved"
    UNCHANGED = "unchanged", "already there"
    #: The target tag points at another image: moving it needs (another) confirmation.
    CONFIRM = "confirm", "needs your confirmation"
    FAILED = "failed", "failed"

    @property
    def ok(self) -> bool:
        return self in (CopyStatus.COPIED, CopyStatus.MOVED, CopyStatus.UNCHANGED)

    @property
    def audit_result(self) -> AuditEntry.Result:
        if self == CopyStatus.CONFIRM:
            return AuditEntry.Result.REFUSED
        return AuditEntry.Result.FAILED if self == CopyStatus.FAILED else AuditEntry.Result.OK


@dataclass
class CopyResult:
    status: CopyStatus
    message: str
    source: str
    target: str
    digest: str
    old_digest: str = ""
    #: Blobs linked into the target by a mount; manifests PUT (platforms, then the image).
    mounted: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CopyResult:
        return cls(
            status=CopyStatus(data.get("status")),
            message=str(data.get("message", "")),
            source=str(data.get("source", "")),
            target=str(data.get("target", "")),
            digest=str(data.get("digest", "")),
            old_digest=str(data.get("old_digest", "")),
            mounted=[str(d) for d in data.get("mounted", [])],
            manifests=[str(d) for d in data.get("manifests", [])],
        )


class CopyError(Exception):
    """A copy that cannot go on (a blob the source cannot lend, a manifest that is not one)."""


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise CopyError("The manifest is not JSON: it cannot be copied.") from None
    if not isinstance(document, dict):
        raise CopyError("The manifest is not a JSON object: it cannot be copied.")
    return document


def _digests(entries: Any, *, skip_foreign: bool = False) -> list[str]:
    """The digests of a manifest's descriptors, each checked (registry data is untrusted)."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        digest = entry.get("digest")
        if skip_foreign and entry.get("urls"):
            continue  # a non-distributable layer: served from its URLs, not the registry
        if not isinstance(digest, str) or not is_valid_digest(digest):
            raise CopyError("The manifest names a blob with an invalid digest.")
        found.append(digest)
    return found


class Copier:
    """One copy's traffic: each blob mounted once, each manifest PUT once."""

    def __init__(self, source: str, target: str) -> None:
        self.client = get_client()
        self.source = source
        self.target = target
        self.mounted: list[str] = []
        self.manifests: list[str] = []
        self._done: set[str] = set()

    def body_of(self, digest: str) -> tuple[bytes, str]:
        manifest = Manifest.objects.filter(digest=digest).first()
        if manifest is not None:
            body = manifest.raw.encode("utf-8", errors="surrogateescape")
            if sha256_digest(body) == digest:
                return body, manifest.media_type
        ref, body = self.client.get_manifest(self.source, digest)
        return body, ref.media_type

    def mount(self, digest: str) -> None:
        if digest in self._done:
            return
        if not self.client.mount_blob(self.target, digest, self.source):
            raise CopyError(
                f"{self.source} cannot lend the blob {short_digest(digest)} (the registry "
                "does not have it there): nothing was tagged."
            )
        self._done.add(digest)
        self.mounted.append(digest)

    def copy_manifest(self, digest: str, body: bytes, media_type: str, depth: int = 0) -> None:
        """Everything ``body`` needs in the target, then the manifest itself by digest."""
        if depth > MAX_DEPTH:
            raise CopyError("The index nests too deep to be copied.")
        document = _document(body)
        for child in _digests(document.get("manifests")):
            if child in self._done:
                continue
            child_body, child_type = self.body_of(child)
            self.copy_manifest(child, child_body, child_type, depth + 1)
            self.client.put_manifest(self.target, child, child_body, child_type)
            self._done.add(child)
            self.manifests.append(child)
        config = document.get("config")
        if isinstance(config, dict):
            for blob in _digests([config]):
                self.mount(blob)
        for blob in _digests(document.get("layers"), skip_foreign=True):
            self.mount(blob)


def current_digest(client, name: str, tag: str) -> str:
    """The digest ``name:tag`` serves now; '' when there is no such tag (or repository)."""
    try:
        return client.head_manifest(name, tag).digest
    except RegistryError as exc:
        if exc.missing or exc.code == "NAME_UNKNOWN":
            return ""
        raise


def copy_image(
    source: Repository,
    manifest: Manifest,
    target: str,
    tag: str,
    actor: Actor,
    *,
    reference: str,
    confirmed_old: str = "",
) -> CopyResult:
    """Put ``manifest`` (from ``source``) under ``target:tag``. The caller has checked the
    user may pull ``source`` and push ``target`` (through the resolver)."""
    destination = f"{target}:{tag}"
    step = Step(AuditEntry.Action.COPY_IMAGE, target, tag, manifest.digest)
    copier = Copier(source.name, target)

    def report(status: CopyStatus, message: str, *, old: str = "", **details: Any) -> CopyResult:
        result = CopyResult(
            status,
            message,
            source=reference,
            target=destination,
            digest=manifest.digest,
            old_digest=old,
            mounted=copier.mounted,
            manifests=copier.manifests,
        )
        if status != CopyStatus.CONFIRM:
            step.audit(
                actor,
                status.audit_result,
                message,
                source=reference,
                old_digest=old,
                mounted=len(copier.mounted),
                manifests_put=copier.manifests + ([manifest.digest] if status.ok else []),
                **details,
            )
        return result

    current = ""
    try:
        current = current_digest(copier.client, target, tag)
        if current and current != manifest.digest and current != confirmed_old:
            message = (
                f"{destination} already exists and points at {short_digest(current)}. "
                "Moving it needs your confirmation."
                if not confirmed_old
                else f"{destination} changed since you confirmed: it now points at "
                f"{short_digest(current)}. Confirm again to move it."
            )
            return report(CopyStatus.CONFIRM, message, old=current)
        body = manifest_bytes(manifest, source)
        copier.copy_manifest(manifest.digest, body, manifest.media_type)
        if current != manifest.digest:
            copier.client.put_manifest(target, tag, body, manifest.media_type)
    except CopyError as exc:
        return report(CopyStatus.FAILED, str(exc), old=current)
    except RegistryError as exc:
        return report(CopyStatus.FAILED, describe(exc), code=exc.code)

    repository, _ = Repository.objects.get_or_create(name=target)
    store.set_tag(repository, tag, manifest.id)
    if current == manifest.digest:
        return report(
            CopyStatus.UNCHANGED,
            f"{destination} already points at {short_digest(manifest.digest)}.",
        )
    platforms = len(copier.manifests)
    what = (
        f"with its {platforms} platform image{'s' if platforms != 1 else ''} " if platforms else ""
    )
    shared = f"{len(copier.mounted)} blob{'s' if len(copier.mounted) != 1 else ''}"
    if current:
        return report(
            CopyStatus.MOVED,
            f"Copied {short_digest(manifest.digest)} {what}to {destination} ({shared} "
            f"mounted, none uploaded); the tag moved from {short_digest(current)}.",
            old=current,
        )
    return report(
        CopyStatus.COPIED,
        f"Copied {short_digest(manifest.digest)} {what}to {destination} ({shared} mounted, "
        "none uploaded).",
    )
