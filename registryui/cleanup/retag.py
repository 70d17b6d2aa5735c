"""Adding a tag to an image, or moving a tag onto it: PUT the image's exact manifest bytes.

The bytes are the ones stored when the digest was first synced (content-addressed, so they
are the registry's own), PUT with their stored media type; the registry then answers with the
same digest. Moving a tag that already points elsewhere needs a confirmation that showed the
old digest, and the tag is checked again (HEAD) right before the PUT: if it moved in the
meantime, nothing is written and the new state is shown for another confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass

from registryui.catalog import store
from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.lib.reference import short_digest
from registryui.registry import RegistryError
from registryui.registry.client import sha256_digest

from .actions import Actor
from .messages import describe


@dataclass
class RetagResult:
    #: done (tag added) · moved · unchanged · confirm (a move needs confirming) · failed
    status: str
    message: str
    #: The digest the tag pointed at before (for a move, or one that needs confirming).
    old_digest: str = ""

    @property
    def http_status(self) -> int:
        return {"failed": 502, "confirm": 409}.get(self.status, 200)


def manifest_bytes(manifest: Manifest, repository: Repository) -> bytes:
    """The exact bytes of a stored manifest, fetched again only if the copy does not match."""
    body = manifest.raw.encode("utf-8", errors="surrogateescape")
    if sha256_digest(body) == manifest.digest:
        return body
    _, body = get_client().get_manifest(repository.name, manifest.digest)
    return body


def left_untagged(repository: Repository, digest: str, tag: str) -> bool:
    """True when moving ``tag`` away leaves ``digest`` with no tag in the repository."""
    return (
        not Tag.objects.filter(repository=repository, manifest__digest=digest)
        .exclude(name=tag)
        .exists()
    )


def retag(
    repository: Repository,
    manifest: Manifest,
    new_tag: str,
    actor: Actor,
    *,
    source: str,
    confirmed_old: str = "",
) -> RetagResult:
    """Point ``new_tag`` at ``manifest``. ``confirmed_old``: the old digest the user confirmed
    moving the tag away from ('' when the tag was new when the form was shown)."""
    client = get_client()
    name = repository.name
    details = {"source": source, "new_tag": new_tag}
    try:
        try:
            current = client.head_manifest(name, new_tag).digest
        except RegistryError as exc:
            if not (exc.not_found or exc.status == 404):
                raise
            current = ""
        if current == manifest.digest:
            changed = store.set_tag(repository, new_tag, manifest.id)
            message = f"{new_tag} already points at {short_digest(manifest.digest)}."
            actor.record(
                "retag",
                repository=name,
                reference=new_tag,
                digest=manifest.digest,
                details={**details, "db_corrected": changed},
                message=message,
            )
            return RetagResult("unchanged", message)
        if current and current != confirmed_old:
            # A move that was not confirmed, or the tag moved since the confirmation.
            message = (
                f"{new_tag} already exists and points at {short_digest(current)}. "
                "Moving it needs your confirmation."
                if not confirmed_old
                else f"{new_tag} changed since you confirmed: it now points at "
                f"{short_digest(current)}. Confirm again to move it."
            )
            return RetagResult("confirm", message, old_digest=current)
        body = manifest_bytes(manifest, repository)
    except RegistryError as exc:
        return _failed(actor, name, new_tag, manifest, details, confirmed_old, exc)
    try:
        put_digest = client.put_manifest(name, new_tag, body, manifest.media_type)
    except RegistryError as exc:
        # The PUT may have been applied though the answer was an error: read the tag back.
        now = _read_back(client, name, new_tag)
        if now != manifest.digest:
            return _failed(
                actor, name, new_tag, manifest, details, confirmed_old, exc, now=now, was=current
            )
        details["recovered"] = exc.code or str(exc.status)
    else:
        # The answer's digest is checked against the bytes sent; when they disagree, a look
        # at the tag decides (a proxy may rewrite headers).
        now = (
            manifest.digest if put_digest == manifest.digest else _read_back(client, name, new_tag)
        )
        if now != manifest.digest:
            message = (
                f"The registry reported {short_digest(put_digest)} for {new_tag}, not "
                f"{short_digest(manifest.digest)}, and the tag now serves "
                f"{short_digest(now) if now else 'nothing'}. The next sync will show it."
            )
            actor.record(
                "retag",
                repository=name,
                reference=new_tag,
                digest=manifest.digest,
                details={**details, "reported": put_digest, "now": now},
                result=AuditEntry.Result.FAILED,
                message=message,
            )
            return RetagResult("failed", message)
    store.set_tag(repository, new_tag, manifest.id)
    if current:
        untagged = left_untagged(repository, current, new_tag)
        message = (
            f"Moved {new_tag} from {short_digest(current)} to {short_digest(manifest.digest)}."
        )
        actor.record(
            "move_tag",
            repository=name,
            reference=new_tag,
            digest=manifest.digest,
            details={**details, "old_digest": current, "old_digest_untagged": untagged},
            message=message,
        )
        return RetagResult("moved", message, old_digest=current)
    message = f"Tagged {short_digest(manifest.digest)} as {new_tag}."
    actor.record(
        "retag",
        repository=name,
        reference=new_tag,
        digest=manifest.digest,
        details=details,
        message=message,
    )
    return RetagResult("done", message)


_UNKNOWN = "?"


def _read_back(client, name: str, tag: str) -> str:
    """The digest the tag serves now; '' when it has none, ``_UNKNOWN`` when the registry
    does not answer."""
    try:
        return client.head_manifest(name, tag).digest
    except RegistryError as exc:
        if exc.not_found or exc.status == 404:
            return ""
        return _UNKNOWN


def _failed(
    actor: Actor,
    name: str,
    new_tag: str,
    manifest: Manifest,
    details: dict,
    confirmed_old: str,
    exc: RegistryError,
    *,
    now: str | None = None,
    was: str | None = None,
) -> RetagResult:
    """A failed retag, saying what the tag holds now when a write may have been applied."""
    if now is None or now == was:
        message = describe(exc, nothing_changed=True)
    elif now == _UNKNOWN:
        message = (
            f"{describe(exc)} The registry then stopped answering: whether {new_tag} was "
            "changed is unknown. Look at the tag when it answers again."
        )
    else:
        message = (
            f"{describe(exc)} {new_tag} now serves "
            f"{short_digest(now) if now else 'nothing'}; the next sync will show it."
        )
    actor.record(
        "move_tag" if confirmed_old else "retag",
        repository=name,
        reference=new_tag,
        digest=manifest.digest,
        details={**details, "code": exc.code, "old_digest": confirmed_old, "now": now},
        result=AuditEntry.Result.FAILED,
        message=message,
    )
    return RetagResult("failed", message, old_digest=confirmed_old)
