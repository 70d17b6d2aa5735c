"""Fixtures of the token server's tests: a signing key, token-mode settings and personas.

Personas (password ``pw-<username>``), each in a team of their own so that levels differ:
``viewer`` (view on team-a/*), ``pusher`` (push on team-a/*), ``deleter`` (delete on team-a/*),
``admin_a`` (admin on team-a/*), ``admin_b`` (admin on team-b/*), ``outsider`` (no team),
``root`` (superuser).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from registryui.teams.models import Grant, Level, Team
from registryui.tokens.keys import write_key_pair

ISSUER = "registryui-tests"
SERVICE = "registryui-tests-registry"


@dataclass(frozen=True)
class KeyFiles:
    key: Path
    cert: Path

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert.read_bytes())


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


def decode(token: str, key_files: KeyFiles, *, audience: str = SERVICE) -> dict:
    """Verify a token as the registry would: signature by the certificate's key, iss, aud."""
    header = jwt.get_unverified_header(token)
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert leaf == key_files.certificate
    return jwt.decode(
        token,
        key_files.certificate.public_key(),
        algorithms=[header["alg"]],
        audience=audience,
        issuer=ISSUER,
    )


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


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
