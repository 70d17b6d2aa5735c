from __future__ import annotations

from django.conf import settings


def site(request) -> dict:
    # What a user may do is the resolver's, so ``may_delete_somewhere`` comes from
    # ``registryui.teams.context_processors`` (core sits below teams).
    return {"REGISTRY_PUBLIC_HOST": settings.REGISTRY_PUBLIC_HOST}
