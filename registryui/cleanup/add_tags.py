"""Several new tags on one image in one go (``latest beta dev``), each reported on its own.

Each name is checked against the Distribution grammar first (a bad one is refused and never
reaches the registry); the valid ones go through ``retag.retag`` one by one, which HEADs the
tag, PUTs the image's exact manifest bytes, mirrors the tag in the database and writes the
audit entry. A tag that already points at another image is not moved until the user has
confirmed the move with its old digest in view; a move confirmed against a digest the tag no
longer has asks again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from django.db import models

from registryui.catalog.models import Manifest, Repository
from registryui.lib.reference import TAG_MAX_LENGTH, is_valid_tag

from .outcomes import Actor, RetagStatus
from .retag import retag

#: Tags one form may add: more is a script's job.
MAX_NEW_TAGS = 20
_SPLIT_RE = re.compile(r"[\s,]+")


class AddStatus(models.TextChoices):
    """What became of one requested tag (the labels are the result page's words)."""

    ADDED = "added", "added"
    MOVED = "moved", "moved"
    UNCHANGED = "unchanged", "already on this image"
    #: It points at another image: moving it needs the user's confirmation.
    CONFIRM = "confirm", "needs your confirmation to move"
    #: Not a valid tag: nothing was asked of the registry.
    REFUSED = "refused", "refused"
    FAILED = "failed", "failed"

    @property
    def ok(self) -> bool:
        return self in (AddStatus.ADDED, AddStatus.MOVED, AddStatus.UNCHANGED)


_FROM_RETAG = {
    RetagStatus.DONE: AddStatus.ADDED,
    RetagStatus.MOVED: AddStatus.MOVED,
    RetagStatus.UNCHANGED: AddStatus.UNCHANGED,
    RetagStatus.CONFIRM: AddStatus.CONFIRM,
    RetagStatus.FAILED: AddStatus.FAILED,
}


@dataclass
class TagReport:
    tag: str
    status: AddStatus
    message: str
    #: The digest the tag pointed at before (a move, or one that needs confirming).
    old_digest: str = ""

    def as_dict(self) -> dict[str, str]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> TagReport:
        return cls(
            tag=str(data.get("tag", "")),
            status=AddStatus(data.get("status")),
            message=str(data.get("message", "")),
            old_digest=str(data.get("old_digest", "")),
        )


@dataclass
class Requested:
    """The names typed, split into valid tags (in order, once each) and refusals."""

    tags: list[str]
    refused: list[TagReport]


def parse_names(text: str) -> Requested:
    """``"latest beta, dev"`` → valid tags and refused names (bad grammar, too many)."""
    names = list(dict.fromkeys(n for n in _SPLIT_RE.split(text or "") if n))
    tags: list[str] = []
    refused: list[TagReport] = []
    for name in names:
        shown = name if len(name) <= TAG_MAX_LENGTH + 10 else f"{name[:TAG_MAX_LENGTH]}…"
        if not is_valid_tag(name):
            refused.append(
                TagReport(
                    shown,
                    AddStatus.REFUSED,
                    "Not a valid tag: 1 to 128 letters, digits, _ . or -, not starting "
                    "with . or -.",
                )
            )
        elif len(tags) >= MAX_NEW_TAGS:
            refused.append(
                TagReport(
                    shown, AddStatus.REFUSED, f"At most {MAX_NEW_TAGS} tags at once: not added."
                )
            )
        else:
            tags.append(name)
    return Requested(tags=tags, refused=refused)


def add_tags(
    repository: Repository,
    manifest: Manifest,
    tags: list[str],
    actor: Actor,
    *,
    source: str,
    confirmed: dict[str, str] | None = None,
) -> list[TagReport]:
    """Put each tag on ``manifest``; ``confirmed`` maps a tag to the old digest the user
    agreed to move it away from."""
    confirmed = confirmed or {}
    reports = []
    for tag in tags:
        result = retag(
            repository,
            manifest,
            tag,
            actor,
            source=source,
            confirmed_old=confirmed.get(tag, ""),
        )
        reports.append(
            TagReport(tag, _FROM_RETAG[result.status], result.message, result.old_digest)
        )
    return reports
