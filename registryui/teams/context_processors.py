from __future__ import annotations

from .models import Level
from .permissions import access_for


def access(request) -> dict:
    user = getattr(request, "user", None)

    def may_delete_somewhere() -> bool:
        """Whether the user may delete in some repository: the retention pages' own test
        (``cleanup.views._deletable``), so the navigation offers "Retention" exactly to those
        it would not answer 403. Templates call it only where they render the link."""
        if user is None or not user.is_authenticated:
            return False
        return bool(access_for(user).patterns_at(Level.DELETE))

    return {"may_delete_somewhere": may_delete_somewhere}
