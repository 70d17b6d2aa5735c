"""What the notification endpoint and the sync worker remember.

- ``ProcessedEvent``: one row per manifest push/delete event, keyed by the registry's event id,
  so that a redelivered event changes nothing and a late (out-of-order) one can be recognised.
- ``EventStats``: one row of counters and "last seen" facts for the status page.
- ``SyncLock``: the lock row that keeps two syncs from running at once on SQLite (PostgreSQL
  uses an advisory lock; the row then only tells who holds it).
- ``SyncRequest``: a staff member's "sync now", picked up by the worker.
- ``SyncWorker``: each ``sync_registry --loop`` process, with a heartbeat.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from registryui.catalog.models import SyncRun


class ProcessedEvent(models.Model):
    class Outcome(models.TextChoices):
        RECEIVED = "received", "Being handled"
        APPLIED = "applied", "Applied"
        UNCHANGED = "unchanged", "Nothing to change"
        DEFERRED = "deferred", "Deferred to the next sync"

    #: The registry's event id (a UUID); redeliveries of one event carry the same id.
    event_id = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: The event's own timestamp (the registry's clock), used to spot out-of-order deliveries.
    timestamp = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=16)
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=135, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RECEIVED)
    #: What was done, in words ("tag 1.4 → sha256:…", "asked the registry: tag gone", ...).
    note = models.CharField(max_length=255, blank=True)
    #: Milliseconds from the event's timestamp to the change being committed (pushes only).
    lag_ms = models.PositiveIntegerField(null=True, blank=True)
    #: Milliseconds this endpoint spent on the event.
    handling_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["repository", "tag", "timestamp"], name="event_repo_tag_time"),
            models.Index(
                fields=["repository", "digest", "timestamp"], name="event_repo_digest_time"
            ),
        ]

    def __str__(self) -> str:
        target = self.repository + (f":{self.tag}" if self.tag else "")
        if self.digest:
            target += f"@{self.digest[:19]}"
        return f"{self.action} {target} ({self.outcome})"


class EventStats(models.Model):
    """The single row (pk=1) of notification counters; updated with one UPDATE per delivery."""

    received = models.PositiveBigIntegerField(default=0)
    applied = models.PositiveBigIntegerField(default=0)
    unchanged = models.PositiveBigIntegerField(default=0)
    ignored = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    deferred = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    last_received_at = models.DateTimeField(null=True, blank=True)
    last_event = models.CharField(max_length=400, blank=True)
    #: The repository ``last_event`` names: the status page shows it only to who may see it.
    last_event_repository = models.CharField(max_length=255, blank=True)
    last_rejected_at = models.DateTimeField(null=True, blank=True)
    last_rejected_reason = models.CharField(max_length=255, blank=True)
    last_deferred_at = models.DateTimeField(null=True, blank=True)
    last_deferred_reason = models.CharField(max_length=400, blank=True)
    last_deferred_repository = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "event statistics"

    def __str__(self) -> str:
        return f"{self.received} events received"

    @property
    def processed(self) -> int:
        return self.applied + self.unchanged

    @classmethod
    def load(cls) -> EventStats:
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @classmethod
    def bump(cls, counts: dict[str, int] | None = None, **fields) -> None:
        """Add to counters and set "last ..." fields in one UPDATE (the row is made on demand)."""
        values = {name: F(name) + n for name, n in (counts or {}).items() if n}
        values.update(fields)
        if not values:
            return
        if cls.objects.filter(pk=1).update(**values):
            return
        try:
            with transaction.atomic():
                cls.objects.create(pk=1)
        except IntegrityError:
            pass  # another request made it first
        cls.objects.filter(pk=1).update(**values)


class SyncLock(models.Model):
    """Who holds the sync lock and until when.

    On SQLite this row *is* the lock: it is claimed with one atomic UPDATE that only matches
    when the row is free or its lease ran out, and the holder renews the lease while it syncs.
    On PostgreSQL the advisory lock decides and this row only tells the status page who holds it.
    """

    name = models.CharField(max_length=64, primary_key=True)
    #: "host:pid:random" of the holder; blank when free.
    owner = models.CharField(max_length=200, blank=True)
    #: Human description of the holder ("worker", "command", ...).
    purpose = models.CharField(max_length=64, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.owner or 'free'}"


class SyncRequest(models.Model):
    """A "sync now" from the status page, run by the next sync that starts after it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the worker"
        DONE = "done", "Done"

    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"sync request {self.requested_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    @classmethod
    def pending(cls):
        return cls.objects.filter(status=cls.Status.PENDING)


class SyncWorker(models.Model):
    """One ``sync_registry --loop`` process, as it last reported itself."""

    class State(models.TextChoices):
        IDLE = "idle", "Waiting"
        SYNCING = "syncing", "Syncing"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=200, unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.IDLE)
    interval = models.FloatField(default=600)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def alive(self) -> bool:
        """Seen recently enough: a waiting worker reports every few seconds; a syncing one
        every lease renewal (see events.lock)."""
        if self.state == self.State.STOPPED:
            return False
        return self.last_seen_at >= timezone.now() - timedelta(minutes=2)
