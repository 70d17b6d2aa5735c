"""Outgoing webhooks: endpoints a team's admins register, and the deliveries owed to them.

A delivery is a row written in the same transaction as what it reports (or right after it
commits), so nothing is lost when the worker that sends them restarts; the worker sends each
endpoint's deliveries in order, one at a time, with retries and backoff (``delivery.py``).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from registryui.teams.models import Team
from registryui.teams.patterns import PATTERN_MAX_LENGTH, validate_pattern


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class EventKind(models.TextChoices):
    """What an endpoint can subscribe to."""

    PUSH = "push", "Pushes (a tag pushed, added or moved)"
    DELETE = "delete", "Deletes (tags and images)"
    RETENTION = "retention", "Retention runs"


class Endpoint(models.Model):
    class Format(models.TextChoices):
        CLOUDEVENTS = "cloudevents", "CloudEvents 1.0 (JSON, structured mode)"
        SLACK = "slack", "Slack-compatible (incoming webhook: a text message)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where deliveries are POSTed (http or https).",
    )
    secret = models.CharField(
        max_length=200,
        default=new_secret,
        help_text=(
            "Signs every delivery: the X-RegistryUI-Signature header is "
            '"sha256=" + hex HMAC-SHA256 of "<X-RegistryUI-Timestamp>.<body>" with this secret.'
        ),
    )
    events = models.JSONField(
        default=list,
        help_text="The kinds of events this endpoint hears: push, delete, retention.",
    )
    repository_pattern = models.CharField(
        max_length=PATTERN_MAX_LENGTH,
        default="*",
        validators=[validate_pattern],
        help_text=(
            "Repositories this endpoint hears about (glob: team-a/*). Events are only ever sent "
            "for repositories the team's own grants cover, whatever this says."
        ),
    )
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.CLOUDEVENTS)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="webhook_endpoint_team_name")
        ]

    def __str__(self) -> str:
        return f"{self.team.name}: {self.name}"

    def clean(self) -> None:
        unknown = [e for e in self.events or [] if e not in EventKind.values]
        if unknown or not isinstance(self.events, list):
            raise ValidationError(
                {"events": f"Unknown event kinds: {', '.join(map(str, unknown))}"}
            )
        if not self.events:
            raise ValidationError({"events": "Choose at least one kind of event."})


class Delivery(models.Model):
    """One event owed to one endpoint, and what became of it."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        #: Retried until ``MAX_ATTEMPTS`` and given up on.
        FAILED = "failed", "failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    #: The CloudEvents id: the same on every retry, so a receiver can drop repeats.
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    repository = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(help_text="The event as built when it happened (before formatting).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    #: A worker sending it holds it until then; a worker that died lets it go when it passes.
    leased_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "state", "id"], name="webhook_delivery_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.state})"


#: Delivered and failed rows are kept this long for the delivery log.
LOG_RETENTION = timedelta(days=14)
