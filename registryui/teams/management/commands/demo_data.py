"""The demo's logins and teams (``make demo``); safe to run again and again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from registryui.teams.models import Grant, Level, Team

#: team name → (its grants, its members); the repositories are those of devtools.samples.
DEMO_TEAMS: dict[str, tuple[list[tuple[str, int]], list[str]]] = {
    "team-a": ([("team-a/*", Level.DELETE), ("hello", Level.VIEW)], ["alice"]),
    "team-b": ([("team-b/*", Level.ADMIN), ("platform/*", Level.VIEW)], ["bob"]),
}


class Command(BaseCommand):
    help = (
        "Create or reset the demo's logins (idempotent): the superuser 'admin', and 'alice' "
        "(team-a) and 'bob' (team-b), all with the given password."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", required=True)

    @transaction.atomic
    def handle(self, *args: Any, password: str, **options: Any) -> None:
        User = get_user_model()
        admin, created = User.objects.get_or_create(username="admin")
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.set_password(password)
        admin.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} the demo login 'admin'.")
        for team_name, (grants, members) in DEMO_TEAMS.items():
            team, _ = Team.objects.get_or_create(name=team_name, defaults={"slug": team_name})
            for pattern, level in grants:
                Grant.objects.update_or_create(
                    team=team, pattern=pattern, defaults={"level": level}
                )
            for username in members:
                user, created = User.objects.get_or_create(username=username)
                user.is_active = True
                user.set_password(password)
                user.save()
                team.members.add(user)
                self.stdout.write(
                    f"{'Created' if created else 'Updated'} the demo login '{username}' "
                    f"({team_name})."
                )
