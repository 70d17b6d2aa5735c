"""Adding a tag to an image, or moving a tag onto it: PUT the image's exact manifest bytes.

The bytes are the ones stored when the digest was first synced (content-addressed, so they
are the registry's own), PUT with their stored media type; the registry then answers with the
same digest. Moving a tag that already points elsewhere needs a confirmation that showed the
old digest, and the tag is checked again (HEAD) right before the PUT: if it moved in the
meantime, nothing is written and the new state is shown for another confirmation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from registryui.catalog import store
from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.lib.reference import short_digest
from registryui.registry import RegistryError
from registryui.registry.client import sha256_digest

from .messages import describe
from .outcomes import Actor, RetagStatus, Step


@dataclass
class RetagResult:
    status: RetagStatus
    message: str
    #: The digest the tag pointed at before (for a move, or one that needs confirming).
    old_digest: str = ""

    @classmethod
    def report(
        cls,
        actor: Actor,
        step: Step,
        status: RetagStatus,
        message: str,
        *,
        old_digest: str | None = None,
        **details: Any,
    ) -> RetagResult:
        """The result, its audit entry written: ``details`` go to the log, and so does
        ``old_digest`` when it is given."""
        if old_digest is not None:
            details["old_digest"] = old_digest
        step.audit(actor, status.audit_result, message, **details)
        return cls(status, message, old_digest or "")

    @property
    def http_status(self) -> int:
        return self.status.http_status

    @property
    def failed(self) -> bool:
        return self.status == RetagStatus.FAILED

    @property
    def moved(self) -> bool:
        return self.status == RetagStatus.MOVED


def manifest_bytes(manifest: Manifest, repository: Repository) -> bytes:
    """The exact bytes of a stored manifest, fetched again only if the copy does not match."""
    body = manifest.raw.encode("utf-8", errors="surrogateescape")
    if sha256_digest(body) == manifest.digest:
        return body
    _, body = get_client().get_manifest(repository.name, manifest.digest)
    return body


def _natural(name: str) -> tuple:
    """``build-2`` before ``build-10``: digit runs compare as numbers."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name)
    )


_DIGITS = re.compile(r"(\d+)")


@dataclass
class ImageSide:
    """One of the two images of a tag move, with what a person judges it by."""

    digest: str
    #: None when the database has not seen this digest yet (pushed since the last sync).
    manifest: Manifest | None
    #: Its other tags in the repository (the moving tag left out), in natural order.
    other_tags: list[str]


def move_sides(
    repository: Repository, tag: str, old_digest: str, new: Manifest
) -> tuple[ImageSide, ImageSide]:
    """The image ``tag`` points at now and the one it would point at: created, size,
    platforms (on the manifest) and their other tags here. Two queries."""
    old = Manifest.objects.filter(digest=old_digest).first()
    others: dict[str, list[str]] = {old_digest: [], new.digest: []}
    for name, digest in (
        Tag.objects.filter(repository=repository, manifest__digest__in=list(others))
        .exclude(name=tag)
        .values_list("name", "manifest__digest")
    ):
        others[digest].append(name)
    return (
        ImageSide(old_digest, old, sorted(others[old_digest], key=_natural)),
        ImageSide(new.digest, new, sorted(others[new.digest], key=_natural)),
    )


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
    step = Step(AuditEntry.Action.RETAG, name, new_tag, manifest.digest)
    try:
        try:
            current = client.head_manifest(name, new_tag).digest
        except RegistryError as exc:
            if not exc.missing:
                raise
            current = ""
        if current == manifest.digest:
            changed = store.set_tag(repository, new_tag, manifest.id)
            message = f"{new_tag} already points at {short_digest(manifest.digest)}."
            return RetagResult.report(
                actor, step, RetagStatus.UNCHANGED, message, **details, db_corrected=changed
            )
        if current and current != confirmed_old:
            # A move that was not confirmed, or the tag moved since the confirmation.
            message = (
                f"{new_tag} already exists and points at {short_digest(current)}. "
                "Moving it needs your confirmation."
                if not confirmed_old
                else f"{new_tag} changed since you confirmed: it now points at "
                f"{short_digest(current)}. Confirm again to move it."
            )
            return RetagResult(RetagStatus.CONFIRM, message, old_digest=current)
        body = manifest_bytes(manifest, repository)
    except RegistryError as exc:
        return _failed(actor, step, details, confirmed_old, exc)
    try:
        put_digest = client.put_manifest(name, new_tag, body, manifest.media_type)
    except RegistryError as exc:
        # The PUT may have been applied though the answer was an error: read the tag back.
        now = _read_back(client, name, new_tag)
        if now != manifest.digest:
            return _failed(actor, step, details, confirmed_old, exc, now=now, was=current)
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
            return RetagResult.report(
                actor, step, RetagStatus.FAILED, message, **details, reported=put_digest, now=now
            )
    store.set_tag(repository, new_tag, manifest.id)
    if current:
        untagged = left_untagged(repository, current, new_tag)
        message = (
            f"Moved {new_tag} from {short_digest(current)} to {short_digest(manifest.digest)}."
        )
        return RetagResult.report(
            actor,
            replace(step, action=AuditEntry.Action.MOVE_TAG),
            RetagStatus.MOVED,
            message,
            old_digest=current,
            **details,
            old_digest_untagged=untagged,
        )
    message = f"Tagged {short_digest(manifest.digest)} as {new_tag}."
    return RetagResult.report(actor, step, RetagStatus.DONE, message, **details)


_UNKNOWN = "?"


def _read_back(client, name: str, tag: str) -> str:
    """The digest the tag serves now; '' when it has none, ``_UNKNOWN`` when the registry
    does not answer."""
    try:
        return client.head_manifest(name, tag).digest
    except RegistryError as exc:
        if exc.missing:
            return ""
        return _UNKNOWN


def _failed(
    actor: Actor,
    step: Step,
    details: dict,
    confirmed_old: str,
    exc: RegistryError,
    *,
    now: str | None = None,
    was: str | None = None,
) -> RetagResult:
    """A failed retag, saying what the tag holds now when a write may have been applied."""
    new_tag = step.reference
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
    if confirmed_old:
        step = replace(step, action=AuditEntry.Action.MOVE_TAG)
    return RetagResult.report(
        actor,
        step,
        RetagStatus.FAILED,
        message,
        old_digest=confirmed_old,
        **details,
        code=exc.code,
        now=now,
    )
