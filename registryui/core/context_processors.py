from __future__ import annotations

from django.conf import settings


def site(request) -> dict:
    return {"REGISTRY_PUBLIC_HOST": settings.REGISTRY_PUBLIC_HOST}
