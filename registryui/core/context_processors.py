from __future__ import annotations

from django.conf import settings


def site(request) -> dict:
    user = getattr(request, "user", None)

    def may_delete_somewhere() -> bool:
        """Whether the user may delete in some repository: the retention pages' own test
        (``cleanup.views._deletable``), so the navigation offers "Retention" exactly to those
        it would not answer 403. Templates call it only where they render the link."""
        from registryui.teams.models import Level
        from registryui.teams.permissions import access_for

        if user is None or not user.is_authenticated:
            return False
        return bool(access_for(user).patterns_at(Level.DELETE))

    return {
        "REGISTRY_PUBLIC_HOST": settings.REGISTRY_PUBLIC_HOST,
        "may_delete_somewhere": may_delete_somewhere,
    }
