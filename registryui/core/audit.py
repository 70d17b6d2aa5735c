"""Writing the audit log: one call per action, from views, commands and the token server."""

from __future__ import annotations

from typing import Any

from .models import AuditEntry


def client_ip(request) -> str | None:
    """The client's address as Django sees it (behind a proxy, set up the proxy headers)."""
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def record(
    action: str,
    *,
    request=None,
    user=None,
    actor_name: str = "",
    via: str = "ui",
    repository: str = "",
    reference: str = "",
    digest: str = "",
    details: dict[str, Any] | None = None,
    result: str = AuditEntry.Result.OK,
    message: str = "",
) -> AuditEntry:
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditEntry.objects.create(
        action=action,
        actor=user,
        actor_name=actor_name or (user.get_username() if user is not None else "anonymous"),
        via=via,
        repository=repository,
        reference=reference,
        digest=digest,
        details=details or {},
        result=result,
        message=message,
        client_ip=client_ip(request),
    )
