"""Named personas for permission tests: who they are, their teams and grants, in one place.

    def test_it_hides_team_b(personas):
        response = personas["a_viewer"].client().get("/")

Teams and grants (the repositories are those of ``registryui.devtools.samples.push_samples``
plus the canary ``secret/vault`` that only a superuser may ever see):

    team-a      view on team-a/*, view on hello         members: a_viewer, a_deleter
    team-a-ops  delete on team-a/*                      members: a_deleter
    team-b      admin on team-b/*, view on platform/*   members: b_admin (staff)

Personas: ``anonymous`` (the site's default: anonymous viewing off), ``public`` (anonymous,
with anonymous viewing on for the public pattern ``hello``), ``no_team`` (logged in, in no
team; the site's default shows them nothing), ``a_viewer``, ``a_deleter``, ``b_admin``,
``superuser``.

Use the ``personas`` fixture (function-scoped, needs the database) or ``make_personas()`` in
fixtures of wider scope. Expose the fixture in another test package with
``from tests.personas import personas  # noqa: F401`` in its ``conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from registryui.teams.models import Level, SiteSettings, Team

PASSWORD = "persona-password-9f3k"
PUBLIC_PATTERNS = "hello"

PERSONA_NAMES = (
    "anonymous",
    "public",
    "no_team",
    "a_viewer",
    "a_deleter",
    "b_admin",
    "superuser",
)

#: team name → (grants, member persona names)
TEAMS: dict[str, tuple[list[tuple[str, Level]], list[str]]] = {
    "team-a": ([("team-a/*", Level.VIEW), ("hello", Level.VIEW)], ["a_viewer", "a_deleter"]),
    "team-a-ops": ([("team-a/*", Level.DELETE)], ["a_deleter"]),
    "team-b": ([("team-b/*", Level.ADMIN), ("platform/*", Level.VIEW)], ["b_admin"]),
}

#: The users behind the logged-in personas: username → extra attributes.
USERS = {
    "no_team": {},
    "a_viewer": {},
    "a_deleter": {},
    "b_admin": {"is_staff": True},  # a team admin; staff so they can reach the admin
    "superuser": {"is_staff": True, "is_superuser": True},
}


@dataclass
class Persona:
    name: str
    user: object
    #: Anonymous viewing on (for ``public``) or the site's default (off).
    anonymous_view: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return bool(getattr(self.user, "is_authenticated", False))

    def apply_site_settings(self) -> None:
        """Set the site-wide settings this persona is defined with (inside the test)."""
        site = SiteSettings.load()
        site.anonymous_view = self.anonymous_view
        site.public_patterns = PUBLIC_PATTERNS
        site.no_team_patterns = ""
        site.save()

    def client(self, **kwargs) -> Client:
        """A test client logged in as this persona, with the persona's site settings."""
        self.apply_site_settings()
        client = Client(**kwargs)
        if self.authenticated:
            client.force_login(self.user)
        return client

    def fresh_user(self):
        """The user re-read from the database (no cached rules), or a new AnonymousUser."""
        if not self.authenticated:
            return AnonymousUser()
        return get_user_model().objects.get(pk=self.user.pk)

    def __repr__(self) -> str:
        return f"<Persona {self.name}>"


@cache
def _hashed_password() -> str:
    # Hashing is deliberately slow (PBKDF2); every persona shares one hash per test run.
    return make_password(PASSWORD)


def make_personas() -> dict[str, Persona]:
    """Create the users, teams and grants of every persona; return them by name."""
    user_model = get_user_model()
    users = {}
    for name, attributes in USERS.items():
        user = user_model(username=name.replace("_", "-"), email=f"{name}@example.com")
        for attribute, value in attributes.items():
            setattr(user, attribute, value)
        user.password = _hashed_password()
        user.save()
        users[name] = user
    for team_name, (grants, members) in TEAMS.items():
        team = Team.objects.create(name=team_name, slug=team_name)
        for pattern, level in grants:
            team.grants.create(pattern=pattern, level=level)
        team.members.set([users[m] for m in members])
    personas = {
        "anonymous": Persona("anonymous", AnonymousUser()),
        "public": Persona("public", AnonymousUser(), anonymous_view=True),
    }
    for name, user in users.items():
        personas[name] = Persona(name, user)
    return {name: personas[name] for name in PERSONA_NAMES}


@pytest.fixture
def personas(db) -> dict[str, Persona]:
    return make_personas()
