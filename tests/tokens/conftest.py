"""Fixtures of the token server's tests: a signing key, token-mode settings and personas.

Personas (password ``pw-<username>``), each in a team of their own so that levels differ:
``viewer`` (view on team-a/*), ``pusher`` (push on team-a/*), ``deleter`` (delete on team-a/*),
``admin_a`` (admin on team-a/*), ``admin_b`` (admin on team-b/*), ``outsider`` (no team),
``root`` (superuser).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from registryui.teams.models import Grant, Level, Team
from registryui.tokens.keys import write_key_pair

from .support import ISSUER, SERVICE, KeyFiles


@pytest.fixture(scope="session")
def key_files(tmp_path_factory) -> KeyFiles:
    folder = tmp_path_factory.mktemp("token-keys")
    key, cert = folder / "key.pem", folder / "cert.pem"
    write_key_pair(key, cert, algorithm="ES256", common_name=ISSUER, days=3650)
    return KeyFiles(key, cert)


@pytest.fixture
def token_mode(settings, key_files: KeyFiles) -> KeyFiles:
    """Token mode on, with the test key; fast password hashing (tokens check a password each)."""
    settings.TOKEN_AUTH_ENABLED = True
    settings.TOKEN_ISSUER = ISSUER
    settings.TOKEN_SERVICE = SERVICE
    settings.TOKEN_KEY_FILE = str(key_files.key)
    settings.TOKEN_CERT_FILE = str(key_files.cert)
    settings.TOKEN_EXPIRY = 300
    settings.LOGIN_FAILURE_LIMIT = 10
    settings.LOGIN_FAILURE_WINDOW = 300
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return key_files


@dataclass
class Personas:
    viewer: object
    pusher: object
    deleter: object
    admin_a: object
    admin_b: object
    outsider: object
    root: object
    team_a_admins: Team
    team_b_admins: Team

    @staticmethod
    def password(user) -> str:
        return f"pw-{user.username}"

    def creds(self, user) -> str:
        return f"{user.username}:{self.password(user)}"


@pytest.fixture
def personas(django_user_model, settings) -> Personas:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    def user(name: str, **extra):
        return django_user_model.objects.create_user(name, password=f"pw-{name}", **extra)

    def team(name: str, pattern: str, level: int, *members) -> Team:
        team = Team.objects.create(name=name, slug=name)
        Grant.objects.create(team=team, pattern=pattern, level=level)
        team.members.add(*members)
        return team

    people = {
        name: user(name)
        for name in ("viewer", "pusher", "deleter", "admin_a", "admin_b", "outsider")
    }
    root = user("root", is_superuser=True, is_staff=True)
    team("team-a-viewers", "team-a/*", Level.VIEW, people["viewer"])
    team("team-a-pushers", "team-a/*", Level.PUSH, people["pusher"])
    team("team-a-deleters", "team-a/*", Level.DELETE, people["deleter"])
    a_admins = team("team-a-admins", "team-a/*", Level.ADMIN, people["admin_a"])
    b_admins = team("team-b-admins", "team-b/*", Level.ADMIN, people["admin_b"])
    return Personas(**people, root=root, team_a_admins=a_admins, team_b_admins=b_admins)
