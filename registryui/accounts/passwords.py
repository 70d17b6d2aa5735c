"""Every password check of the web UI goes through ``authenticate`` here: the login page, the
admin's login page, and (through ``limiter``) the token server. LDAP passwords are checked by
the LDAP backend inside Django's ``authenticate``, so they are counted the same way."""

from __future__ import annotations

import logging

from django.contrib.auth import authenticate as django_authenticate

from registryui.core.audit import record
from registryui.core.models import AuditEntry

from . import limiter
from .limiter import Locked

log = logging.getLogger(__name__)

__all__ = ["Locked", "audit_failure", "audit_success", "authenticate"]


def audit_success(request, user, *, via: str, method: str) -> None:
    record(
        AuditEntry.Action.LOGIN,
        request=request,
        user=user,
        via=via,
        details={"method": method},
        message=f"Logged in with {method}.",
    )


def audit_failure(request, username: str, *, via: str, reason: str, **details) -> None:
    record(
        AuditEntry.Action.LOGIN_FAILED,
        request=request,
        actor_name=username[:150] or "(no username)",
        via=via,
        result=AuditEntry.Result.REFUSED,
        message=reason,
        details=details,
    )


def authenticate(request, username: str, password: str, *, via: str):
    """The user these credentials name, or None; raises ``Locked`` over the limit.

    ``via`` is where the password was typed ("ui", "admin", "token"); backends may read it
    (the LDAP backend refuses directory passwords at /auth/token unless allowed).
    """
    try:
        attempt = limiter.reserve(request, username)
    except Locked:
        log.warning("login of %r refused: too many failures from this address", username[:150])
        raise
    user = django_authenticate(request, username=username, password=password, via=via)
    if user is None:
        reason = "wrong username or password"
        if getattr(request, "directory_unavailable", False):
            reason += " (the LDAP directory did not answer)"
        audit_failure(request, username, via=via, reason=reason)
        return None
    attempt.succeeded()
    method = getattr(user, "backend", "") or ""
    audit_success(
        request, user, via=via, method="LDAP" if "ldap" in method.lower() else "a password"
    )
    return user
