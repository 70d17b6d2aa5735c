"""Signing registry tokens (JWT) the way registry 2.8 and 3.x both accept them."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass

import jwt
from django.conf import settings

from .keys import SigningKey, current_signing_key


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: dt.datetime
    claims: dict

    def as_response(self) -> dict:
        """The token endpoint's JSON: ``token`` for docker, ``access_token`` for OAuth2 clients."""
        return {
            "token": self.token,
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": self.issued_at.isoformat().replace("+00:00", "Z"),
        }


def issue(
    subject: str,
    access: list[dict],
    *,
    service: str | None = None,
    expires_in: int | None = None,
    now: float | None = None,
    key: SigningKey | None = None,
) -> IssuedToken:
    """A signed token for ``subject`` (``""`` for anonymous) granting ``access``."""
    key = key or current_signing_key()
    expires_in = settings.TOKEN_EXPIRY if expires_in is None else expires_in
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": settings.TOKEN_ISSUER,
        "sub": subject,
        # A string: registry 2.8 rejects a list here although RFC 7519 allows one.
        "aud": service or settings.TOKEN_SERVICE,
        "exp": issued + expires_in,
        "nbf": issued,
        "iat": issued,
        "jti": secrets.token_urlsafe(18),
        "access": access,
    }
    # x5c rather than kid: 2.8 and 3.x compute kid differently, both verify an x5c chain.
    token = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"x5c": key.x5c})
    return IssuedToken(
        token=token,
        expires_in=expires_in,
        issued_at=dt.datetime.fromtimestamp(issued, dt.UTC),
        claims=claims,
    )
