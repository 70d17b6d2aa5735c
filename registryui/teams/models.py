"""Teams, their members and their grants on repository patterns; site-wide access settings."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .patterns import PATTERN_MAX_LENGTH, validate_pattern


class Level(models.IntegerChoices):
    """Each level includes the ones before it; they follow the registry's own actions."""

    VIEW = 10, "view"  # see and pull
    PUSH = 20, "push"  # push images; in the UI: add and move tags
    DELETE = 30, "delete"  # delete tags and images, run retention
    ADMIN = 40, "admin"  # all of these, and manage the team's own grants


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="registry_teams", blank=True, through="Membership"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user in a team, and who put them there: an admin by hand, or a login through the
    identity provider (OIDC groups, LDAP groups) which also takes it away again."""

    class Source(models.TextChoices):
        LOCAL = "local", "added by hand"
        OIDC = "oidc", "OIDC groups"
        LDAP = "ldap", "LDAP groups"

    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    source = models.CharField(
        max_length=8,
        choices=Source.choices,
        default=Source.LOCAL,
        help_text="Memberships from a provider follow its groups at each login.",
    )

    class Meta:
        # The table and unique index Django made for the plain many-to-many field before this
        # model existed (migration 0003 adopts them as they are).
        db_table = "teams_team_members"
        unique_together = [("team", "user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Grant(models.Model):
    """A team's level on the repositories whose names match a glob (``*`` crosses ``/``)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="grants")
    pattern = models.CharField(
        max_length=PATTERN_MAX_LENGTH,
        validators=[validate_pattern],
        help_text="A glob on repository names: team-a/* matches team-a/api and team-a/x/y; "
        "* matches everything; ? matches one character; [abc] and [!abc] one of (or none "
        "of) those characters.",
    )
    level = models.PositiveSmallIntegerField(
        choices=Level.choices,
        default=Level.VIEW,
        help_text="view: see and pull · push: also push, add and move tags · delete: also "
        "delete tags and images, run retention · admin: also manage this team's grants.",
    )

    class Meta:
        ordering = ["team", "pattern"]
        constraints = [
            models.UniqueConstraint(fields=["team", "pattern"], name="grant_team_pattern")
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.get_level_display()} on {self.pattern}"


class SiteSettings(models.Model):
    """The one row of site-wide access settings (edited in the admin)."""

    anonymous_view = models.BooleanField(
        "anonymous viewing",
        default=False,
        help_text="Let visitors who are not logged in view (and pull) the repositories the "
        "public patterns match. Logged-in users see those too.",
    )
    public_patterns = models.TextField(
        blank=True,
        default="*",
        help_text="One glob per line: what anonymous visitors may view when anonymous "
        "viewing is on.",
    )
    no_team_patterns = models.TextField(
        "patterns for users in no team",
        blank=True,
        help_text="One glob per line: what a logged-in user in no team may view "
        "(nothing when empty).",
    )

    class Meta:
        verbose_name = verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return "Site settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for field in ("public_patterns", "no_team_patterns"):
            for pattern in split_patterns(getattr(self, field)):
                try:
                    validate_pattern(pattern)
                except ValidationError as exc:
                    errors.setdefault(field, []).extend(exc.messages)
        if errors:
            raise ValidationError(errors)

    @classmethod
    def load(cls) -> SiteSettings:
        obj = cls.objects.filter(pk=1).first()
        return obj if obj is not None else cls(pk=1)


def split_patterns(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]
