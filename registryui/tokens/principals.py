"""Who asks for a token, and how far their rights reach in each repository.

Every level comes from ``registryui.teams.permissions``: people through ``level_on`` (the same
answer the web views get), robot accounts through the resolver's ``Access`` built from their
own grants and capped by their team's grants.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from django.contrib.auth.models import AnonymousUser

from registryui.registry import client
from registryui.teams import permissions
from registryui.teams.models import Level
from registryui.teams.permissions import Access, Rule

from .models import PersonalAccessToken, RobotAccount

#: The JWT subject of the app's own registry client (re-exported for this package's users).
APP_SUBJECT = client.APP_SUBJECT


class Principal(ABC):
    """Who asks for a token; each kind answers "what level on this repository" its own way."""

    #: The token's ``sub``: a username, ``robot$name``, ``registryui$app``; "" for anonymous.
    subject: str = ""
    #: "user", "token", "robot", "anonymous" or "app" (for the audit log).
    kind: str = ""
    #: The person behind it, for the audit log (None for robots, anonymous and the app).
    user = None

    @abstractmethod
    def level_on(self, name: str) -> int:
        """The grant level (``teams.models.Level``) on the repository ``name``; 0 for none."""

    @property
    def may_list_catalog(self) -> bool:
        return False

    @property
    def ceiling(self) -> int:
        """The highest level the credential itself may use anywhere (a token's own limit)."""
        return Level.ADMIN


class UserPrincipal(Principal):
    """A person, logged in with their password or one of their personal access tokens."""

    def __init__(self, user, token: PersonalAccessToken | None = None) -> None:
        self.user = user
        self.token = token
        self.kind = "token" if token is not None else "user"
        self.subject = user.get_username()

    def level_on(self, name: str) -> int:
        level = permissions.level_on(self.user, name)
        return min(level, self.token.max_level) if self.token is not None else level

    @property
    def ceiling(self) -> int:
        return self.token.max_level if self.token is not None else Level.ADMIN

    @property
    def may_list_catalog(self) -> bool:
        # The catalog is every repository unfiltered: for superusers only.
        return bool(self.user.is_active and self.user.is_superuser)


class AnonymousPrincipal(Principal):
    """No credentials: whatever the site's anonymous viewing allows, which is at most pull."""

    kind = "anonymous"
    subject = ""
    user = None

    def __init__(self) -> None:
        self._anonymous = AnonymousUser()

    def level_on(self, name: str) -> int:
        return min(permissions.level_on(self._anonymous, name), Level.VIEW)


class RobotPrincipal(Principal):
    kind = "robot"
    user = None

    def __init__(self, robot: RobotAccount) -> None:
        self.robot = robot
        self.subject = robot.username
        grants = robot.grants.all()
        self._own = Access(
            rules=tuple(Rule(g.pattern, g.level, f"robot {robot.name}") for g in grants)
        )
        # The team's grants as they are now: a robot never outlives a grant its team lost.
        team_grants = robot.team.grants.all()
        self._team = Access(
            rules=tuple(Rule(g.pattern, g.level, f"team {robot.team}") for g in team_grants)
        )

    def level_on(self, name: str) -> int:
        return min(self._own.level_on(name), self._team.level_on(name), Level.DELETE)

    @property
    def access(self) -> Access:
        """The same answers as the resolver's ``Access`` (for the REST API): its own grants,
        within its team's, never above delete."""
        return Access(rules=self._own.rules, within=self._team, ceiling=Level.DELETE)


class AppPrincipal(Principal):
    """The app's own registry client: sync, browse, delete and retag need everything."""

    kind = "app"
    subject = APP_SUBJECT

    def level_on(self, name: str) -> int:
        return Level.ADMIN

    @property
    def may_list_catalog(self) -> bool:
        return True
