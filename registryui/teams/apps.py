from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "registryui.teams"

    def ready(self) -> None:
        # The admin's "view on site" (core, below the resolver) asks the resolver through the
        # check registered here, so that core never imports teams.
        from registryui.core import viewonsite

        viewonsite.register_repository_check(can_view_repository)


def can_view_repository(user, name: str) -> bool:
    from .models import Level
    from .permissions import can

    return can(user, Level.VIEW, name)
