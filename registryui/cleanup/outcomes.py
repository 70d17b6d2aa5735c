"""What a cleanup action reports: who acted, the states its steps end in, and the audit log.

A deletion's steps end in a ``Result`` (gathered in an ``Execution``); a retag or a restore in
a ``RetagStatus``. Each state knows how the audit log records it, so an action reports a step
once (``Step.audit``) instead of writing the outcome and its audit entry side by side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from django.db import models

from registryui.catalog.models import Repository
from registryui.core.audit import record
from registryui.core.models import AuditEntry

from .freed import Freed, estimate_freed
from .plan import DeletionPlan


class Result(models.TextChoices):
    """What happened to one step of a deletion (the labels are the result page's words)."""

    DONE = "done", "deleted"
    GONE = "gone", "already gone"
    #: Re-pushed since it was confirmed: left alone.
    CHANGED = "changed", "left alone (changed)"
    #: Retention: its image is now in use by a kept tag.
    KEPT = "kept", "kept"
    REFUSED = "refused", "refused"
    FAILED = "failed", "failed"
    #: Not tried: the action stopped at an earlier step.
    SKIPPED = "skipped", "skipped"

    @property
    def settled(self) -> bool:
        """The registry holds what was asked for (or what a retention run chose to keep)."""
        return self in (Result.DONE, Result.GONE, Result.KEPT)

    @property
    def audited(self) -> bool:
        """Kept and skipped steps asked nothing of the registry, so they have no audit entry."""
        return self not in (Result.KEPT, Result.SKIPPED)

    @property
    def audit_result(self) -> AuditEntry.Result:
        if self in (Result.CHANGED, Result.REFUSED):
            return AuditEntry.Result.REFUSED
        return AuditEntry.Result.FAILED if self == Result.FAILED else AuditEntry.Result.OK


class RetagStatus(models.TextChoices):
    """What became of a retag (or a restore): the tag's new state, or why it was not written."""

    DONE = "done", "tagged"
    MOVED = "moved", "moved"
    UNCHANGED = "unchanged", "unchanged"
    #: The tag points elsewhere: moving it needs (another) confirmation.
    CONFIRM = "confirm", "needs confirming"
    FAILED = "failed", "failed"

    @property
    def http_status(self) -> int:
        return {RetagStatus.FAILED: 502, RetagStatus.CONFIRM: 409}.get(self, 200)

    @property
    def audit_result(self) -> AuditEntry.Result:
        if self == RetagStatus.CONFIRM:
            return AuditEntry.Result.REFUSED
        return AuditEntry.Result.FAILED if self == RetagStatus.FAILED else AuditEntry.Result.OK


@dataclass(frozen=True)
class Step:
    """One thing an action does to one reference, as its outcome and audit entry name it."""

    action: AuditEntry.Action
    repository: str
    #: The tag (kind "tag"), or the image's digest (kind "image").
    reference: str
    digest: str
    kind: Literal["image", "tag"] = "tag"
    #: An image's tags.
    tags: tuple[str, ...] = ()
    #: The audit entry's reference when it is not ``reference`` (an image with one tag).
    audit_reference: str = ""

    def audit(
        self, actor: Actor, result: AuditEntry.Result, message: str, **details: Any
    ) -> AuditEntry:
        """Write this step's audit entry through ``actor``."""
        return actor.record(
            self.action,
            repository=self.repository,
            reference=self.audit_reference or self.reference,
            digest=self.digest,
            details=details,
            result=result,
            message=message,
        )


@dataclass
class Actor:
    """Who acts and how it is audited: a request's user ("ui") or a policy ("policy")."""

    request: Any = None
    user: Any = None
    name: str = ""
    via: str = "ui"
    #: Ties together the entries of one bulk delete or retention run in the audit log.
    batch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, action: AuditEntry.Action, **kwargs) -> AuditEntry:
        details = {"batch": self.batch, **self.extra, **kwargs.pop("details", {})}
        return record(
            action,
            request=self.request,
            user=self.user,
            actor_name=self.name,
            via=self.via,
            details=details,
            **kwargs,
        )


@dataclass
class Outcome:
    """What happened to one step of a deletion."""

    kind: Literal["image", "tag"]
    #: The tag (kind "tag"), or the image's digest (kind "image").
    reference: str
    digest: str
    result: Result
    message: str = ""
    tags: list[str] = field(default_factory=list)
    #: What the audit entry recorded besides (``method``, ``children_deleted``, ``restore``...).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def children(self) -> list[str]:
        """The platform images deleted with an index."""
        return self.details.get("children_deleted", [])

    def get_result_display(self) -> str:
        if self.result == Result.FAILED and self.details.get("restore"):
            return "failed: a push lost its tag"
        return self.result.label


@dataclass
class Execution:
    repository: Repository
    outcomes: list[Outcome] = field(default_factory=list)
    #: Why everything stopped (deletes disabled, registry unreachable, ...); '' otherwise.
    error: str = ""
    error_code: str = ""
    #: The plan that was carried out, computed from the registry's answers.
    plan: DeletionPlan | None = None

    def by_result(self, *results: Result) -> list[Outcome]:
        return [o for o in self.outcomes if o.result in results]

    def tags_with(self, *results: Result) -> list[str]:
        """The tags of the outcomes with these results (an image's tags, or the one tag)."""
        return [tag for o in self.by_result(*results) for tag in (o.tags or [o.reference])]

    @property
    def deleted_digests(self) -> list[str]:
        """The manifests deleted: the images, and the platform images of deleted indexes."""
        done = [o for o in self.by_result(Result.DONE) if o.kind == "image"]
        return [o.digest for o in done] + [c for o in done for c in o.children]

    @cached_property
    def freed(self) -> Freed:
        """The bytes garbage-collect gives back, estimated when first asked (after the run, once
        the database mirrors it): a retention run estimates its whole batch once instead."""
        return estimate_freed({self.repository.pk: self.deleted_digests})

    @property
    def removed_tags(self) -> list[str]:
        return self.tags_with(Result.DONE, Result.GONE)

    @property
    def deleted_tags(self) -> list[str]:
        return self.tags_with(Result.DONE)

    @property
    def gone_tags(self) -> list[str]:
        return self.tags_with(Result.GONE)

    @property
    def ok(self) -> bool:
        return not self.error and all(o.result.settled for o in self.outcomes)

    @property
    def status_code(self) -> int:
        """200 when done, 409 when refused or changed meanwhile, 502 when the registry failed."""
        if self.error or self.by_result(Result.FAILED):
            return 409 if self.error_code in ("UNSUPPORTED", "REFUSED") else 502
        if self.by_result(Result.REFUSED, Result.CHANGED):
            return 409
        return 200
