"""The token endpoint for docker/skopeo, and the pages for personal access tokens and robots."""

from __future__ import annotations

import base64
import binascii
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from registryui.accounts import limiter
from registryui.accounts.passwords import audit_failure, audit_success
from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.teams.decorators import member_required
from registryui.teams.permissions import administered_teams

from .backends import check_credentials
from .forms import PersonalTokenForm, RobotForm, expiry_from_choice
from .issuing import issue_for
from .keys import TokenKeyError
from .models import PAT_PREFIX, ROBOT_PREFIX, PersonalAccessToken, RobotAccount, RobotGrant
from .principals import AnonymousPrincipal, Principal
from .scopes import Scope, ScopeError, parse_scopes

log = logging.getLogger(__name__)

BASIC_REALM = 'Basic realm="Registry UI", charset="UTF-8"'


# -- /auth/token ----------------------------------------------------------------------------------


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"code": code, "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    response["Cache-Control"] = "no-store"
    return response


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    # No account has a NUL in its name or password, and PostgreSQL text cannot even hold one:
    # such credentials are unreadable rather than a failed login to look up and record.
    if not sep or "\x00" in decoded:
        return None
    return username, password


def _authenticate(
    request: HttpRequest, service: str, scopes: list[Scope]
) -> Principal | HttpResponse:
    """Who is asking: anonymous without credentials, else whom the Basic credentials name.

    Answers the error response instead when the credentials are unreadable (401), wrong (401,
    audited and counted) or the address is over its failure limit (429).
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return AnonymousPrincipal()
    credentials = _basic_credentials(header)
    if credentials is None:
        return _error(
            401,
            "UNAUTHORIZED",
            "Send a username and password with Basic authentication.",
            WWW_Authenticate=BASIC_REALM,
        )
    username, password = credentials
    # Every Basic login counts against the one login limit (registryui.accounts.limiter),
    # whatever it turns out to be: a password, a personal access token or a robot's secret.
    try:
        attempt = limiter.reserve(request, username)
    except limiter.Locked as exc:
        log.warning("token login of %r refused: too many failures", username[:150])
        return _error(
            429,
            "TOOMANYREQUESTS",
            f"Too many failed logins from your address; try again in {exc.retry_after} seconds.",
            Retry_After=str(exc.retry_after),
        )
    result = check_credentials(request, username, password)
    if result.principal is not None:
        attempt.succeeded()
        if result.principal.kind == "user":
            # A password (local or LDAP): a login like the web's. Tokens and robots are not
            # logins; the tokens they get are audited when they reach beyond pull.
            audit_success(request, result.principal.user, via="token", method=result.method)
        return result.principal
    audit_failure(
        request,
        username,
        via="token",
        reason=result.reason,
        service=service,
        scopes=[str(s) for s in scopes],
    )
    return _error(
        401, "UNAUTHORIZED", "Wrong username, password or token.", WWW_Authenticate=BASIC_REALM
    )


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    """``GET /auth/token?service=…&scope=…``: a registry token for what the caller may do.

    POST is a 404 on purpose: we do not implement OAuth2 password grants, and docker falls back
    from a 404 on POST to this GET with Basic credentials.
    """
    # Answers are JSON, errors included: the callers are registry clients, not browsers.
    if not settings.TOKEN_AUTH_ENABLED:
        return _error(404, "NOT_FOUND", "Token authentication is not enabled on this server.")
    if request.method not in ("GET", "HEAD"):
        return _error(404, "NOT_FOUND", "Ask for a token with GET.")
    # Only Basic credentials count here, never a browser's session.
    request.user = AnonymousUser()

    service = request.GET.get("service") or settings.TOKEN_SERVICE
    if service != settings.TOKEN_SERVICE:
        return _error(
            400, "UNSUPPORTED", f"This server issues tokens for {settings.TOKEN_SERVICE!r} only."
        )
    try:
        scopes = parse_scopes(request.GET.getlist("scope"))
    except ScopeError as exc:
        return _error(400, "INVALID_SCOPE", str(exc))

    principal = _authenticate(request, service, scopes)
    if isinstance(principal, HttpResponse):
        return principal

    try:
        issued = issue_for(principal, scopes, service=service, request=request)
    except TokenKeyError as exc:
        log.error("cannot sign registry tokens: %s", exc)
        return _error(503, "UNAVAILABLE", "The token server cannot sign tokens right now.")
    response = JsonResponse(issued.as_response())
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


# -- personal access tokens -------------------------------------------------------------------


def _token_page(request, form, *, status: int = 200, new_secret: str = "", new_token=None):
    response = render(
        request,
        "tokens/token_list.html",
        {
            "form": form,
            "tokens": request.user.registry_tokens.all(),
            "new_secret": new_secret,
            "new_token": new_token,
            "token_auth_enabled": settings.TOKEN_AUTH_ENABLED,
            "registry_host": settings.REGISTRY_PUBLIC_HOST,
            "ldap_token_passwords": bool(
                settings.LDAP_SERVER_URI and settings.LDAP_TOKEN_PASSWORDS
            ),
        },
        status=status,
    )
    # The page may show a secret once: never keep it in a cache.
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@member_required
@require_http_methods(["GET", "POST"])
def personal_tokens(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _token_page(request, PersonalTokenForm())
    form = PersonalTokenForm(request.POST)
    if not form.is_valid():
        return _token_page(request, form, status=400)
    token = PersonalAccessToken(
        user=request.user,
        name=form.cleaned_data["name"],
        max_level=form.cleaned_data["max_level"],
        expires_at=expiry_from_choice(form.cleaned_data["expires"]),
    )
    secret = token.set_secret(PAT_PREFIX)
    token.save()
    record(
        AuditEntry.Action.PAT_CREATED,
        request=request,
        details={
            "token": token.prefix,
            "name": token.name,
            "may": token.get_max_level_display(),
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )
    # Rendered here rather than after a redirect, so that the secret is never stored anywhere.
    return _token_page(request, PersonalTokenForm(), new_secret=secret, new_token=token)


@member_required
@require_POST
def revoke_personal_token(request: HttpRequest, pk: int) -> HttpResponse:
    # Another user's token is hidden: 404, not 403.
    token = get_object_or_404(PersonalAccessToken, pk=pk, user=request.user)
    if token.revoke():
        record(
            AuditEntry.Action.PAT_REVOKED,
            request=request,
            details={"token": token.prefix, "name": token.name},
        )
        messages.success(request, f"The token “{token.name}” is revoked.")
    return redirect("tokens:personal_tokens")


# -- robot accounts -------------------------------------------------------------------------------


def _robot_page(request, form, teams, *, status: int = 200, new_secret: str = "", new_robot=None):
    robots = (
        RobotAccount.objects.filter(team__in=teams)
        .select_related("team", "created_by")
        .prefetch_related("grants")
    )
    response = render(
        request,
        "tokens/robot_list.html",
        {
            "form": form,
            "robots": robots,
            "new_secret": new_secret,
            "new_robot": new_robot,
            "token_auth_enabled": settings.TOKEN_AUTH_ENABLED,
            "registry_host": settings.REGISTRY_PUBLIC_HOST,
            "ldap_token_passwords": bool(
                settings.LDAP_SERVER_URI and settings.LDAP_TOKEN_PASSWORDS
            ),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@member_required
@require_http_methods(["GET", "POST"])
def robots(request: HttpRequest) -> HttpResponse:
    teams = administered_teams(request.user)
    if not teams.exists():
        raise PermissionDenied("Robot accounts are managed by team admins; you administer no team.")
    if request.method == "GET":
        return _robot_page(request, RobotForm(user=request.user), teams)
    form = RobotForm(request.POST, user=request.user)
    if not form.is_valid():
        return _robot_page(request, form, teams, status=400)
    data = form.cleaned_data
    robot = RobotAccount(
        team=data["team"],
        name=data["name"],
        description=data["description"],
        created_by=request.user,
        expires_at=expiry_from_choice(data["expires"]),
    )
    secret = robot.set_secret(ROBOT_PREFIX)
    try:
        with transaction.atomic():
            robot.save()
            RobotGrant.objects.bulk_create(
                RobotGrant(robot=robot, pattern=pattern, level=level)
                for pattern, level in data["grants"]
            )
    except IntegrityError:
        # Two admins picked the same name at the same moment.
        form.add_error("name", "A robot account with this name exists already.")
        return _robot_page(request, form, teams, status=400)
    record(
        AuditEntry.Action.ROBOT_CREATED,
        request=request,
        details={
            "robot": robot.username,
            "team": robot.team.name,
            "grants": [[pattern, level] for pattern, level in data["grants"]],
            "expires_at": robot.expires_at.isoformat() if robot.expires_at else None,
        },
    )
    return _robot_page(
        request, RobotForm(user=request.user), teams, new_secret=secret, new_robot=robot
    )


@member_required
@require_POST
def revoke_robot(request: HttpRequest, pk: int) -> HttpResponse:
    # Robots of teams the user does not administer are hidden: 404, not 403.
    robot = get_object_or_404(RobotAccount, pk=pk, team__in=administered_teams(request.user))
    if robot.revoke():
        record(
            AuditEntry.Action.ROBOT_REVOKED,
            request=request,
            details={"robot": robot.username, "team": robot.team.name},
        )
        messages.success(request, f"The robot account {robot.username} is revoked.")
    return redirect("tokens:robots")
