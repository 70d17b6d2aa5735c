"""Writing the audit log: one call per action, from views, commands and the token server."""

from __future__ import annotations

from typing import Any

from .models import AuditEntry


def client_ip(request) -> str | None:
    """The client's address as Django sees it (behind a proxy, set up the proxy headers)."""
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def _printable(value: Any) -> Any:
    """Strip NUL characters, which PostgreSQL refuses in text and jsonb: the audit log must
    record whatever a client sent (a failed login's name, a scope) rather than fail."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def record(
    action: AuditEntry.Action | str,
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
    # An action the log does not name is a programming error: fail here, not in a report.
    action = AuditEntry.Action(action)
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditEntry.objects.create(
        action=action,
        # A robot account acting through the API is no user row: named, not linked.
        actor=user if getattr(user, "pk", None) is not None else None,
        actor_name=_printable(
            actor_name or (user.get_username() if user is not None else "anonymous")
        )[:150],
        via=via,
        repository=_printable(repository)[:255],
        reference=_printable(reference)[:255],
        digest=_printable(digest)[:135],
        details=_printable(details or {}),
        result=result,
        message=_printable(message),
        client_ip=client_ip(request),
    )
