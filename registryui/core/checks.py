"""System checks: refuse to start with a REGISTRY_URL the client cannot use."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_registry_url(app_configs: Any, **kwargs: Any) -> list[Error]:
    url = getattr(settings, "REGISTRY_URL", "")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        valid_port = True
    except ValueError:  # a bad port, or an unclosed [IPv6] bracket
        parts, valid_port = urlsplit(""), False
    if parts.scheme not in ("http", "https") or not parts.hostname or not valid_port:
        return [
            Error(
                f"REGISTRY_URL={url!r} needs a scheme (http or https), a host and a valid port.",
                hint="Set it to the registry's base URL, e.g. http://127.0.0.1:5000 or "
                "https://registry.example.com.",
                id="registryui.E001",
            )
        ]
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return [
            Error(
                f"REGISTRY_URL={url!r} must be the registry's base URL, without a path.",
                hint="Remove /v2/ and anything after the host and port.",
                id="registryui.E002",
            )
        ]
    return []
