"""Who signs in from where: the login rate limit's counters, identities at an OIDC provider or
LDAP directory, and the table that maps their groups to teams."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from registryui.teams.models import Team


class Provider(models.TextChoices):
    """Where an identity or a group comes from (the same words as ``Membership.Source``)."""

    OIDC = "oidc", "OIDC"
    LDAP = "ldap", "LDAP"


class LoginCounter(models.Model):
    """Password checks for one user name from one client address within the window.

    One row per (name, address), counted with a single UPDATE before the password is checked
    (``limiter.reserve``), so parallel requests cannot all pass a check made before any of them
    is counted. A successful login deletes the row.
    """

    username = models.CharField(max_length=150)
    client_ip = models.CharField(max_length=64)
    attempts = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["username", "client_ip"], name="logincounter_username_ip"
            )
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.client_ip}: {self.attempts}"


class ExternalIdentity(models.Model):
    """A user as an identity provider knows them: the issuer and its stable subject (OIDC
    ``iss`` + ``sub``; for LDAP the server URI and the entry's DN). Never the e-mail alone:
    addresses change hands, subjects do not."""

    provider = models.CharField(max_length=8, choices=Provider.choices)
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    #: The groups the provider named at the last login (shown in the admin).
    groups = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="identity_issuer_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class GroupMapping(models.Model):
    """Members of ``group`` at the provider are members of ``team`` here, for as long as the
    provider says so (checked at each login)."""

    provider = models.CharField(max_length=8, choices=Provider.choices)
    group = models.CharField(
        max_length=255,
        help_text="The group's name in the OIDC groups claim, or the LDAP group's DN (or cn).",
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="group_mappings")

    class Meta:
        ordering = ["provider", "group", "team"]
        verbose_name = "group → team mapping"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "group", "team"], name="groupmapping_provider_group_team"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} group {self.group} → {self.team}"
