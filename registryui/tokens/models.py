"""Credentials for the registry's token server: personal access tokens, robot accounts, and
the failed logins that rate-limit /auth/token per client address.

Secrets are random (240 bits) and stored only as their SHA-256: a slow password hash would add
nothing against guessing such a secret, and the digest lets a login find its row by an index.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from registryui.teams.models import Level, Team
from registryui.teams.patterns import validate_pattern

PAT_PREFIX = "rui_pat_"
ROBOT_PREFIX = "rui_robot_"
#: Robot accounts log in as ``robot$<name>``: ``$`` is not allowed in Django usernames, so a
#: robot can never be mistaken for a person.
ROBOT_USERNAME_PREFIX = "robot$"
#: Don't write ``last_used_at`` more often than this: a push asks for several tokens.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class RegistryLevel(models.IntegerChoices):
    """What a credential may do in the registry (the UI-only admin level has no meaning there)."""

    PULL = Level.VIEW, "pull"
    PUSH = Level.PUSH, "pull and push"
    DELETE = Level.DELETE, "pull, push and delete"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(30)


class SecretCredential(models.Model):
    """What personal access tokens and robot accounts share: a hashed secret and a life cycle."""

    #: The start of the secret, so that a person can recognise it in a list.
    prefix = models.CharField(max_length=24, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def set_secret(self, kind_prefix: str) -> str:
        """Give the credential a new secret and return it; only its hash is kept."""
        secret = new_secret(kind_prefix)
        self.prefix = secret[: len(kind_prefix) + 6]
        self.secret_hash = hash_secret(secret)
        return secret

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"

    def revoke(self) -> bool:
        """Revoke it now; False when it already was."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = timezone.now()
        type(self).objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=self.revoked_at
        )
        return True

    def touch(self) -> None:
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            self.last_used_at = now
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)


class PersonalAccessToken(SecretCredential):
    """A password for ``docker login`` that acts as its user, at most up to ``max_level``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registry_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “laptop”.")
    max_level = models.PositiveSmallIntegerField(
        choices=RegistryLevel.choices,
        default=RegistryLevel.PUSH,
        help_text="The most it may do; never more than its user's own permissions.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "personal access token"

    def __str__(self) -> str:
        return f"{self.user}: {self.name} ({self.prefix}…)"


class RobotAccount(SecretCredential):
    """A login for CI with its own grants, owned by a team and never wider than the team's."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="robots")
    name = models.SlugField(
        max_length=100,
        unique=True,
        help_text="Lowercase letters, digits, - and _; the login is robot$<name>.",
    )
    description = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["team", "name"]

    def __str__(self) -> str:
        return self.username

    @property
    def username(self) -> str:
        return f"{ROBOT_USERNAME_PREFIX}{self.name}"


class RobotGrant(models.Model):
    robot = models.ForeignKey(RobotAccount, on_delete=models.CASCADE, related_name="grants")
    pattern = models.CharField(max_length=255, validators=[validate_pattern])
    level = models.PositiveSmallIntegerField(
        choices=RegistryLevel.choices, default=RegistryLevel.PULL
    )

    class Meta:
        ordering = ["robot", "pattern"]
        constraints = [
            models.UniqueConstraint(fields=["robot", "pattern"], name="robotgrant_robot_pattern")
        ]

    def __str__(self) -> str:
        return f"{self.robot}: {self.get_level_display()} on {self.pattern}"
