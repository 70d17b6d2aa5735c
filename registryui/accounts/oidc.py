"""Sign-in with an OpenID Connect provider, on top of mozilla-django-oidc.

What this adds to the library:

- Discovery: the endpoints come from ``OIDC_DISCOVERY_URL`` (fetched when first needed, kept
  for ``OIDC_DISCOVERY_TTL`` seconds), not from four hand-copied settings.
- The ID token's ``iss`` and ``aud`` are checked (the library checks the signature, the nonce
  and the state; PKCE is the library's ``OIDC_USE_PKCE``).
- Users are found by issuer and subject (``ExternalIdentity``), never by e-mail: a new subject
  gets a new account even when its address matches someone's.
- The groups claim becomes team memberships (``memberships.follow_groups``) at each login.
- Logging out ends the provider's session when it has an ``end_session_endpoint``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.shortcuts import resolve_url
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from .memberships import follow_groups
from .models import ExternalIdentity, Provider
from .passwords import audit_success

log = logging.getLogger(__name__)

#: mozilla-django-oidc setting → the discovery document's key.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class ProviderError(Exception):
    """The provider did not answer, or not with what OpenID Connect says it must."""


_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return bool(getattr(settings, "OIDC_DISCOVERY_URL", ""))


def discovery() -> dict[str, Any]:
    """The provider's ``.well-known/openid-configuration``, cached for a while."""
    url = settings.OIDC_DISCOVERY_URL
    with _lock:
        cached = _cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderError(f"The sign-in provider did not answer ({url}): {exc}") from exc
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), str) for key in (*DISCOVERED.values(), "issuer")
    ):
        raise ProviderError(f"{url} is not an OpenID Connect discovery document.")
    with _lock:
        _cache[url] = (time.monotonic() + settings.OIDC_DISCOVERY_TTL, document)
    return document


def forget_discovery() -> None:
    with _lock:
        _cache.clear()


def oidc_setting(attr: str, *args):
    """``import_from_settings`` with the endpoints taken from discovery."""
    if attr in DISCOVERED:
        return discovery()[DISCOVERED[attr]]
    return import_from_settings(attr, *args)


class OIDCBackend(OIDCAuthenticationBackend):
    """The authentication backend for the provider's callback (and only for it)."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs) -> None:
        # The library reads (and here: discovers) every endpoint when the backend is made,
        # and Django makes every backend for every password check too. Read them lazily
        # instead (``__getattr__``), so a provider that is down never slows password logins.
        self.UserModel = get_user_model()

    def __getattr__(self, name: str):
        if name.startswith("OIDC_"):
            defaults = {"OIDC_RP_SIGN_ALGO": ("RS256",), "OIDC_RP_IDP_SIGN_KEY": (None,)}
            return self.get_settings(name, *defaults.get(name, ()))
        raise AttributeError(name)

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce; a password check never reaches the provider,
        # even when its form was posted to a URL carrying ?code=…&state=….
        if not enabled() or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(f"The sign-in provider did not answer: {exc}") from exc

    def get_user(self, user_id):
        # Like Django's ModelBackend: deactivating someone ends their sessions too.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def get_payload_data(self, token, key):
        payload = super().get_payload_data(token, key)
        # The library verifies the signature, not whom the token is from and for.
        try:
            jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=discovery()["issuer"],
                options={"require": ["iss", "aud", "sub", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        info = self.get_userinfo(access_token, id_token, payload)
        if info.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer is about another subject.")
        claims = {**payload, **info}
        issuer, subject = payload["iss"], str(payload["sub"])
        with transaction.atomic():
            identity = (
                ExternalIdentity.objects.select_related("user")
                .filter(issuer=issuer, subject=subject)
                .first()
            )
            if identity is None:
                user = self._new_user(claims)
                identity = ExternalIdentity.objects.create(
                    provider=Provider.OIDC, issuer=issuer, subject=subject, user=user
                )
            user = identity.user
            if not user.is_active:
                return None
            self._update_user(user, claims)
            groups = _groups(claims.get(settings.OIDC_GROUPS_CLAIM))
            identity.groups = sorted(groups)
            identity.last_login = timezone.now()
            identity.save(update_fields=["groups", "last_login"])
            follow_groups(user, groups, Provider.OIDC, request=self.request)
        audit_success(self.request, user, via="oidc", method=f"OIDC ({issuer})")
        return user

    def _new_user(self, claims: dict[str, Any]):
        wanted = str(claims.get("preferred_username") or claims.get("sub"))
        # Django's username characters only: "$" would read as a robot account at /auth/token.
        base = re.sub(r"[^\w.@+-]", "-", wanted)[:140] or "user"
        for n in range(1, 100):
            username = base if n == 1 else f"{base}-{n}"
            if self.UserModel.objects.filter(username=username).exists():
                continue
            try:
                with transaction.atomic():
                    user = self.UserModel(username=username)
                    # SSO users have no password here: docker logins use personal tokens.
                    user.set_unusable_password()
                    user.save()
                    return user
            except IntegrityError:
                continue
        raise SuspiciousOperation(f"No free username for {base!r}.")

    def _update_user(self, user, claims: dict[str, Any]) -> None:
        fields = {
            "email": claims.get("email") or "",
            "first_name": (claims.get("given_name") or "")[:150],
            "last_name": (claims.get("family_name") or "")[:150],
        }
        changed = [f for f, v in fields.items() if isinstance(v, str) and getattr(user, f) != v]
        for field in changed:
            setattr(user, field, fields[field])
        if changed:
            user.save(update_fields=changed)


def _groups(value: Any) -> set[str]:
    """The groups claim: a list of names (or one name); anything else is no groups."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {g for g in value if isinstance(g, str)}
    return set()


def provider_logout_url(request) -> str:
    """Where logging out sends the browser: the provider's ``end_session_endpoint`` (RP-
    initiated logout) when it has one, else our own logged-out page."""
    here = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    id_token = request.session.get("oidc_id_token")
    try:
        endpoint = discovery().get("end_session_endpoint") if id_token else None
    except ProviderError:
        endpoint = None
    if not endpoint:
        return here
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": here,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def check_configuration() -> list[str]:
    """Problems with the OIDC settings, for the system check."""
    if not enabled():
        return []
    problems = []
    if not settings.OIDC_RP_CLIENT_ID:
        problems.append("OIDC_DISCOVERY_URL is set but OIDC_CLIENT_ID is empty.")
    if not settings.OIDC_RP_CLIENT_SECRET:
        problems.append("OIDC_DISCOVERY_URL is set but OIDC_CLIENT_SECRET is empty.")
    return problems
