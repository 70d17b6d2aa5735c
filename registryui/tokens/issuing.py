"""From a principal and the scopes it asked for to a signed, audited token.

Shared by the /auth/token view and by the app's own registry client (``app_token_provider``),
so that both grant, sign and audit the same way.
"""

from __future__ import annotations

import logging

from django.conf import settings

from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.registry import RegistryError

from .principals import AppPrincipal, Principal
from .scopes import Scope, ScopeError, grant, is_privileged, parse_scopes
from .signing import IssuedToken, issue

log = logging.getLogger(__name__)


def issue_for(
    principal: Principal, scopes: list[Scope], *, service: str, request=None
) -> IssuedToken:
    access = grant(principal, scopes)
    token = issue(principal.subject, access, service=service)
    if is_privileged(access):
        repositories = sorted({e["name"] for e in access if e["type"] == "repository"})
        record(
            AuditEntry.Action.TOKEN_ISSUED,
            request=request,
            user=principal.user,
            actor_name=principal.subject or "anonymous",
            via="token",
            repository=repositories[0] if len(repositories) == 1 else "",
            details={
                "kind": principal.kind,
                "service": service,
                "scopes": [str(s) for s in scopes],
                "granted": access,
                "jti": token.claims["jti"],
            },
        )
    return token


class AppTokenProvider:
    """The app's own registry client signs its tokens in-process, instead of asking itself
    over HTTP (which a single-worker server could not even answer while it waits)."""

    def __call__(self, challenge: dict[str, str]) -> tuple[str, int]:
        service = challenge.get("service") or settings.TOKEN_SERVICE
        if service != settings.TOKEN_SERVICE:
            raise RegistryError(
                "The registry's token service does not match TOKEN_SERVICE.",
                code="UNAUTHORIZED",
                detail=f"registry: {service!r}, TOKEN_SERVICE: {settings.TOKEN_SERVICE!r}",
            )
        try:
            scopes = parse_scopes([challenge.get("scope", "")])
        except ScopeError as exc:
            raise RegistryError(
                "The registry asked for a scope we cannot read.",
                code="INVALID_RESPONSE",
                detail=str(exc),
            ) from exc
        token = issue_for(AppPrincipal(), scopes, service=service)
        return token.token, token.expires_in


def app_token_provider_factory() -> AppTokenProvider | None:
    """Plugged into ``catalog.upstream``: a provider in token mode, None otherwise."""
    return AppTokenProvider() if settings.TOKEN_AUTH_ENABLED else None
