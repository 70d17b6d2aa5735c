"""What people write about a repository, and which repositories each user starred.

Both are user data, not a cache of the registry, so they are keyed by the repository's *name*
rather than a foreign key to ``catalog.Repository``: a sync deletes the Repository row of a
repository the registry no longer lists, and a re-push makes a new row. The overview and the
stars survive both and apply again to whatever is pushed under that name later (as a page about
``team-a/api`` would). Nothing leaks through them: they are only ever read for repositories the
resolver shows (``registryui.overview.queries``), and an admin may delete a stale row.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone

#: A README larger than this is not an overview but documentation: link to it instead.
README_MAX_LENGTH = 50_000
DESCRIPTION_MAX_LENGTH = 200


class RepositoryOverview(models.Model):
    name = models.CharField("repository", max_length=255, unique=True)
    description = models.CharField(
        max_length=DESCRIPTION_MAX_LENGTH,
        blank=True,
        help_text="One line shown in the repository list and found by search.",
    )
    readme = models.TextField(
        "README",
        blank=True,
        validators=[MaxLengthValidator(README_MAX_LENGTH)],
        help_text="Markdown (CommonMark with tables); raw HTML is shown as text.",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def empty(self) -> bool:
        return not (self.description.strip() or self.readme.strip())


class Star(models.Model):
    """A user's favourite repository: listed first, and under its own filter."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField("repository", max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="star_user_name")]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.name}"
