"""Start-up checks of token mode: a usable key and certificate, and sane names."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .keys import TokenKeyError, load_signing_key, resolve_path


@register(Tags.security)
def check_token_keys(app_configs, **kwargs) -> list[Error | Warning]:
    if not getattr(settings, "TOKEN_AUTH_ENABLED", False):
        return []
    problems: list[Error | Warning] = []
    for name in ("TOKEN_ISSUER", "TOKEN_SERVICE"):
        if not getattr(settings, name, ""):
            problems.append(
                Error(
                    f"{name} is empty.",
                    hint="Set it to the same string as the registry's auth.token block.",
                    id="registryui.tokens.E001",
                )
            )
    try:
        key = load_signing_key(
            resolve_path(settings.TOKEN_KEY_FILE), resolve_path(settings.TOKEN_CERT_FILE)
        )
    except TokenKeyError as exc:
        problems.append(
            Error(
                str(exc),
                hint="Run `python manage.py token_keys` to create the key and certificate, "
                "or point TOKEN_KEY_FILE and TOKEN_CERT_FILE at yours.",
                id="registryui.tokens.E002",
            )
        )
        return problems
    left = key.not_valid_after - dt.datetime.now(dt.UTC)
    if left <= dt.timedelta(0):
        problems.append(
            Error(
                f"The token certificate {settings.TOKEN_CERT_FILE} has expired: the registry "
                "rejects every token.",
                hint="Run `python manage.py token_keys --force` and give the registry the new "
                "certificate.",
                id="registryui.tokens.E003",
            )
        )
    elif left < dt.timedelta(days=30):
        problems.append(
            Warning(
                f"The token certificate {settings.TOKEN_CERT_FILE} expires in {left.days} days.",
                hint="Make a new one with `python manage.py token_keys --force`.",
                id="registryui.tokens.W001",
            )
        )
    return problems
