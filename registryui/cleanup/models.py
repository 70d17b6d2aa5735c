"""Retention policies: which tags a scheduled cleanup may delete, and which it must keep."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from registryui.teams.patterns import validate_pattern


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"{value!r} is not a regular expression: {exc}") from None


class RetentionPolicyQuerySet(models.QuerySet):
    def enabled(self) -> RetentionPolicyQuerySet:
        return self.filter(enabled=True)


class RetentionPolicy(models.Model):
    """Per matching repository: delete the tags that no rule keeps.

    A tag is kept when it matches ``keep_regex``, is one of the ``keep_last`` most recent tags
    (by when the UI first saw it or it last moved, never the image's build date), or is younger
    than ``older_than_days``; when a rule uses age and the tag's age is unknown; and, whatever
    the rules say, when its image is kept through another tag (``registryui.cleanup.retention``).
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    repository_pattern = models.CharField(
        max_length=255,
        validators=[validate_pattern],
        help_text="A glob on repository names: team-a/* matches team-a/api and team-a/x/y; "
        "* matches everything.",
    )
    keep_last = models.PositiveIntegerField(
        default=10,
        validators=[MaxValueValidator(100_000)],
        help_text="Always keep this many most recent tags of each repository (0: none).",
    )
    older_than_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(36_500)],
        help_text="Delete only tags that last moved more than this many days ago (empty: any age).",
    )
    #: Pull and push rules (issue 16): they read the pulls the pull endpoint records
    #: (``events.PullDay``) and the tags' push times; ``cleanup.retention`` explains each verdict
    #: with the dates.
    not_pulled_days = models.PositiveIntegerField(
        "not pulled in days",
        null=True,
        blank=True,
        validators=[MaxValueValidator(36_500)],
        help_text="Delete only images nobody pulled in this many days; while pull tracking has "
        "been on for less, every image is kept (empty: pulls do not matter).",
    )
    keep_pulled = models.PositiveIntegerField(
        "keep most recently pulled",
        null=True,
        blank=True,
        validators=[MaxValueValidator(100_000)],
        help_text="Always keep this many most recently pulled images of each repository "
        "(empty: none).",
    )
    pushed_before_days = models.PositiveIntegerField(
        "pushed more than days ago",
        null=True,
        blank=True,
        validators=[MaxValueValidator(36_500)],
        help_text="Delete only tags pushed more than this many days ago; a tag with no recorded "
        "push counts as pushed when Registry UI first saw it (empty: any push time).",
    )
    keep_regex = models.CharField(
        "always keep tags matching",
        max_length=500,
        blank=True,
        validators=[validate_regex],
        help_text=r"A regular expression searched in each tag name, e.g. "
        r"^(latest|v\d+\.\d+\.\d+)$ (empty: none).",
    )
    #: New policies start off: a policy is switched on only from its dry run's confirmation
    #: page (``/retention/<pk>/enable``), so no scheduled run acts on a policy nobody previewed.
    enabled = models.BooleanField(
        default=False,
        help_text="Off: apply_retention skips it and the UI only previews it. Switch it on "
        "from its dry run, after seeing what it deletes.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_applied_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: One line: what the last real run did ("3 tags in 2 repositories, 1.2 MB; 0 failures").
    last_result = models.CharField(max_length=500, blank=True, editable=False)

    objects = RetentionPolicyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cleanup:retention_preview", args=[self.pk])

    def clean(self) -> None:
        # A policy with neither rule would delete every tag not matching the expression:
        # far too easy to save by accident, so one of the two must hold something back.
        holds_back = (
            self.keep_last,
            self.older_than_days is not None,
            self.not_pulled_days is not None,
            self.keep_pulled,
            self.pushed_before_days is not None,
        )
        if not any(holds_back):
            raise ValidationError(
                "This policy would delete every tag: keep the most recent tags "
                "(keep last > 0) or delete only tags older than some days, not pulled in "
                "some days or pushed more than some days ago."
            )

    @property
    def uses_age(self) -> bool:
        """True when a rule depends on tags' ages (the most recent N, or older than D days)."""
        return bool(self.keep_last or self.older_than_days)

    @property
    def uses_pulls(self) -> bool:
        return bool(self.keep_pulled) or self.not_pulled_days is not None

    def keeps_by_name(self, tag: str) -> bool:
        return bool(self.keep_regex) and re.search(self.keep_regex, tag) is not None


class ActionResult(models.Model):
    """What a cleanup POST did, kept so that its result page is a GET (post/redirect/get).

    Only the user who acted can open it (``/results/<id>/``, an unguessable id), and only while
    the resolver still shows them the repository. Rows older than ``KEEP_DAYS`` are removed
    when a new one is written; the audit log is the lasting record.
    """

    KEEP_DAYS = 30

    class Kind(models.TextChoices):
        DELETION = "deletion", "deletion"
        RETAG = "retag", "tag added or moved"
        RETENTION = "retention", "retention run"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    #: The repository acted on ('' for a retention run, which names its repositories inside).
    repository = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=400)
    #: The HTTP status of the result page (409 refused, 502 the registry failed, else 200).
    status = models.PositiveSmallIntegerField(default=200)
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("cleanup:result", args=[self.pk])
