"""Who calls the API: a personal access token or robot secret (``Authorization: Bearer``), or
the browser's session (CSRF-checked on unsafe methods), or nobody (reads only, when the site
allows anonymous viewing).

A token acts as its user within its own ceiling (``max_level``), a robot within its grants
and its team's: both through ``teams.permissions.bind_credential``, so every answer of the
resolver (lists, counts, 404s, 403s) is the credential's. Neither opens a session.

Failed bearer secrets count against the one login limit (``accounts.limiter``), per client
address: past the limit the API answers 429 without looking the secret up. Good secrets are
not counted (they are 240 random bits; a CI runner behind a shared address must not lock
itself out by its own traffic).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security import HttpBearer

from registryui.accounts import limiter
from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.teams.models import SiteSettings
from registryui.teams.permissions import bind_credential
from registryui.tokens.backends import check_bearer
from registryui.tokens.principals import RobotPrincipal, UserPrincipal

from .problems import Code, Problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The login limit's "user name" for bearer secrets (a name no person can have: it has spaces).
BEARER_LIMIT_NAME = "api bearer token"


class RobotUser(AnonymousUser):
    """A robot account as ``request.user``: authenticated, never staff, no user row (the
    audit log names it ``robot$<name>``)."""

    def __init__(self, principal: RobotPrincipal) -> None:
        self.robot = principal.robot
        self.username = principal.subject

    def __str__(self) -> str:
        return self.username

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def is_authenticated(self) -> bool:
        return True

    def get_username(self) -> str:
        return self.username


class Caller:
    """What ``request.auth`` holds: how the request authenticated."""

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind  # "token", "robot", "session" or "anonymous"
        self.name = name

    def __bool__(self) -> bool:
        return True


class Credentials(HttpBearer):
    """The API's one authentication (documented as HTTP bearer; the session works too)."""

    openapi_description = (
        "A personal access token (rui_pat_…) or a robot account's secret (rui_robot_…). "
        "Same-origin browser calls may use the session instead, with the CSRF token "
        "(X-CSRFToken) on unsafe methods."
    )

    def __call__(self, request):
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise Problem(
                    401,
                    Code.INVALID_TOKEN,
                    "Send the token as 'Authorization: Bearer <token>'.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_request"'},
                )
            return self.authenticate(request, secret.strip())
        user = request.user
        if user.is_authenticated:
            if request.method not in SAFE_METHODS:
                _check_csrf(request)
            return Caller("session", user.get_username())
        if request.method in SAFE_METHODS and SiteSettings.load().anonymous_view:
            return Caller("anonymous")
        return None

    def authenticate(self, request, token: str):
        result = check_bearer(token)
        principal = result.principal
        if principal is None:
            _count_failure(request, result.reason)
            raise Problem(
                401,
                Code.INVALID_TOKEN,
                "The token is unknown, revoked or expired.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if isinstance(principal, RobotPrincipal):
            user = RobotUser(principal)
            bind_credential(user, access=principal.access)
            request.user = user
            return Caller("robot", principal.subject)
        assert isinstance(principal, UserPrincipal)
        bind_credential(principal.user, ceiling=principal.ceiling)
        request.user = principal.user
        return Caller("token", principal.subject)


def _check_csrf(request) -> None:
    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise Problem(
            403,
            Code.CSRF_FAILED,
            "CSRF verification failed: send the csrftoken cookie's value as X-CSRFToken, "
            "or use a bearer token.",
        )


def _count_failure(request, reason: str) -> None:
    try:
        limiter.reserve(request, BEARER_LIMIT_NAME)
    except limiter.Locked as exc:
        raise Problem(
            429,
            Code.TOO_MANY_ATTEMPTS,
            str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    record(
        AuditEntry.Action.LOGIN_FAILED,
        request=request,
        user=None,
        actor_name=BEARER_LIMIT_NAME,
        via="api",
        result=AuditEntry.Result.REFUSED,
        message=reason,
    )
