"""Checking the Basic credentials sent to /auth/token: passwords, personal access tokens and
robot accounts.

These are deliberately not Django ``AUTHENTICATION_BACKENDS``: a personal access token or a robot
secret opens the registry, never a session in the web UI (a leaked CI secret must not let
anyone into the admin).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.contrib.auth import authenticate

from .models import (
    PAT_PREFIX,
    ROBOT_PREFIX,
    ROBOT_USERNAME_PREFIX,
    PersonalAccessToken,
    RobotAccount,
    hash_secret,
)
from .principals import Principal, RobotPrincipal, UserPrincipal


@dataclass
class LoginResult:
    principal: Principal | None
    #: Why a login failed, for the audit log (never shown to the client).
    reason: str = ""
    #: How a person logged in: "a password" or "LDAP" (for the audit log).
    method: str = ""


def check_credentials(request, username: str, password: str) -> LoginResult:
    if not username or not password:
        return LoginResult(None, "empty username or password")
    if username.startswith(ROBOT_USERNAME_PREFIX):
        return _robot(username[len(ROBOT_USERNAME_PREFIX) :], password)
    if password.startswith(PAT_PREFIX):
        result = _personal_token(username, password)
        if result.principal is not None or result.reason != "unknown token":
            return result
        # Not one of our tokens: it may still be someone's (odd) password.
    # The caller (the token view) has counted this attempt in the login limit already.
    user = authenticate(request, username=username, password=password, via="token")
    if user is None:
        return LoginResult(None, "wrong username or password")
    method = "LDAP" if "ldap" in getattr(user, "backend", "").lower() else "a password"
    return LoginResult(UserPrincipal(user), method=method)


def _personal_token(username: str, secret: str) -> LoginResult:
    token = (
        PersonalAccessToken.objects.select_related("user")
        .filter(secret_hash=hash_secret(secret))
        .first()
    )
    if token is None:
        return LoginResult(None, "unknown token")
    # The token must be presented with its own user's name, as docker login asks for both.
    if token.user.get_username() != username:
        return LoginResult(None, "token of another user")
    return _token_state(token)


def _token_state(token: PersonalAccessToken) -> LoginResult:
    if not token.user.is_active:
        return LoginResult(None, "inactive user")
    if token.revoked_at is not None:
        return LoginResult(None, f"revoked token {token.prefix}")
    if token.is_expired:
        return LoginResult(None, f"expired token {token.prefix}")
    token.touch()
    return LoginResult(UserPrincipal(token.user, token=token))


def _robot(name: str, secret: str) -> LoginResult:
    robot = RobotAccount.objects.select_related("team").filter(name=name).first()
    if robot is None or not hmac.compare_digest(robot.secret_hash, hash_secret(secret)):
        return LoginResult(None, "wrong robot name or secret")
    return _robot_state(robot)


def _robot_state(robot: RobotAccount) -> LoginResult:
    if robot.revoked_at is not None:
        return LoginResult(None, "revoked robot account")
    if robot.is_expired:
        return LoginResult(None, "expired robot account")
    robot.touch()
    return LoginResult(RobotPrincipal(robot))


def check_bearer(secret: str) -> LoginResult:
    """A personal access token or a robot secret sent alone (``Authorization: Bearer`` of the
    REST API): the secret names its credential, whose state is checked as for a login."""
    if secret.startswith(PAT_PREFIX):
        token = (
            PersonalAccessToken.objects.select_related("user")
            .filter(secret_hash=hash_secret(secret))
            .first()
        )
        return _token_state(token) if token is not None else LoginResult(None, "unknown token")
    if secret.startswith(ROBOT_PREFIX):
        robot = (
            RobotAccount.objects.select_related("team")
            .filter(secret_hash=hash_secret(secret))
            .first()
        )
        if robot is None:
            return LoginResult(None, "unknown robot secret")
        return _robot_state(robot)
    return LoginResult(None, "not a personal access token or robot secret")
