"""What the UI did itself, as the audit log records it, becomes webhook deliveries.

Every mutation is audited (one entry per tag or image a delete touched, one per retag, one per
retention run), so the audit log is the one place that sees them all, whichever page, command or
API call acted. Summaries (``bulk_delete``) are skipped: their steps have entries of their own.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from registryui.core.models import AuditEntry

from .emit import Occurrence, emit, forget_endpoints
from .models import Endpoint

post_save.connect(forget_endpoints, sender=Endpoint, dispatch_uid="webhooks-endpoint-saved")
post_delete.connect(forget_endpoints, sender=Endpoint, dispatch_uid="webhooks-endpoint-deleted")

Action = AuditEntry.Action


def occurrences(entry: AuditEntry) -> list[Occurrence]:
    """The events an audit entry reports (none for entries that changed nothing)."""
    details = entry.details if isinstance(entry.details, dict) else {}
    common = {"actor": entry.actor_name, "via": entry.via, "audit_id": entry.pk}
    action = entry.action
    if action == Action.RETENTION_RUN:
        # One event per repository that lost tags, so that each endpoint hears only of the
        # repositories its team may see.
        deleted = details.get("deleted") or {}
        if not isinstance(deleted, dict):
            return []
        return [
            Occurrence(
                type="io.registryui.retention.run",
                repository=repository,
                subject=repository,
                data={
                    **common,
                    "repository": repository,
                    "policy": str(details.get("policy", entry.reference)),
                    "deleted_tags": sorted(map(str, tags)),
                    "interrupted": bool(details.get("interrupted")),
                },
                time=entry.created_at,
            )
            for repository, tags in sorted(deleted.items())
            if tags
        ]
    if entry.result != AuditEntry.Result.OK or not entry.repository:
        return []
    if action == Action.DELETE_TAG:
        tag = entry.reference
        return [
            Occurrence(
                type="io.registryui.tag.deleted",
                repository=entry.repository,
                subject=f"{entry.repository}:{tag}",
                data={**common, "repository": entry.repository, "tag": tag, "digest": entry.digest},
                time=entry.created_at,
            )
        ]
    if action == Action.DELETE_IMAGE:
        tags = details.get("tags") if isinstance(details.get("tags"), list) else []
        return [
            Occurrence(
                type="io.registryui.image.deleted",
                repository=entry.repository,
                subject=f"{entry.repository}@{entry.digest}",
                data={
                    **common,
                    "repository": entry.repository,
                    "digest": entry.digest,
                    "tags": sorted(map(str, tags)),
                },
                time=entry.created_at,
            )
        ]
    if action in (Action.RETAG, Action.MOVE_TAG, Action.RESTORE_TAG):
        tag = entry.reference
        return [
            Occurrence(
                type=(
                    "io.registryui.tag.moved"
                    if action == Action.MOVE_TAG
                    else "io.registryui.tag.pushed"
                ),
                repository=entry.repository,
                subject=f"{entry.repository}:{tag}",
                data={**common, "repository": entry.repository, "tag": tag, "digest": entry.digest},
                time=entry.created_at,
            )
        ]
    return []


@receiver(post_save, sender=AuditEntry, dispatch_uid="webhooks-from-audit")
def _audited(sender, instance: AuditEntry, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw:
        return
    for occurrence in occurrences(instance):
        emit(occurrence)
