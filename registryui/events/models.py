"""What the notification endpoint and the sync worker remember.

- ``ProcessedEvent``: one row per manifest push/delete event, keyed by the registry's event id,
  so that a redelivered event changes nothing and a late (out-of-order) one can be recognised.
- ``TagClock``: per tag, the registry time of the latest event applied to it, so that two
  deliveries racing on one tag (registry replicas) are applied in event-time order.
- ``EventStats``: one row of counters and "last seen" facts for the status page.
- ``SyncLock``: the lock row that keeps two syncs from running at once on SQLite (PostgreSQL
  uses an advisory lock; the row then only tells who holds it).
- ``SyncRequest``: a staff member's "sync now", picked up by the worker.
- ``SyncWorker``: each ``sync_registry --loop`` process, with a heartbeat.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from registryui.catalog.models import SyncRun


class ProcessedEvent(models.Model):
    class Outcome(models.TextChoices):
        RECEIVED = "received", "Being handled"
        APPLIED = "applied", "Applied"
        UNCHANGED = "unchanged", "Nothing to change"
        DEFERRED = "deferred", "Deferred to the next sync"
        #: Invalid, or contradicted by the registry (a delete of a tag it still has, a push into
        #: a repository it does not have): nothing was changed.
        REJECTED = "rejected", "Rejected"

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


class TagClock(models.Model):
    """The registry's time of the latest event applied to a tag (a push or a delete).

    A delivery changes a tag only after moving this clock forward, in the same transaction: the
    conditional UPDATE locks the row until the commit, so a concurrent delivery for the same tag
    waits, then finds the clock moved and applies only if its own event is newer. Whatever the
    order the deliveries arrive or finish in, and on SQLite and PostgreSQL alike, the newest
    event wins.
    """

    #: Where a new row starts: earlier than any event, so the first claim always moves it.
    ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)

    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128)
    event_time = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "tag"], name="tagclock_repository_tag")
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag} @ {self.event_time:%Y-%m-%d %H:%M:%S.%f}"

    @classmethod
    def advance(cls, repository: str, tag: str, when: datetime | None) -> bool:
        """Move the tag's clock to ``when`` if that is later; True when it moved.

        Call inside ``transaction.atomic()`` and write the tag in the same transaction: the row
        stays locked until the commit. The row is made with ``ignore_conflicts`` (an INSERT …
        ON CONFLICT DO NOTHING, which waits for a concurrent insert of the same key to finish),
        then moved with one UPDATE whose WHERE is re-checked after any concurrent writer commits.
        An event of unknown time cannot be ordered: it only takes the row's lock (True), and the
        caller writes what the registry itself said rather than what the event said.
        """
        cls.objects.bulk_create(
            [cls(repository=repository, tag=tag, event_time=cls.ORIGIN)], ignore_conflicts=True
        )
        if when is None:
            list(
                cls.objects.select_for_update()
                .filter(repository=repository, tag=tag)
                .values_list("pk", flat=True)
            )
            return True
        return bool(
            cls.objects.filter(repository=repository, tag=tag, event_time__lt=when).update(
                event_time=when
            )
        )


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
        every lease renewal (see sync.lock)."""
        if self.state == self.State.STOPPED:
            return False
        return self.last_seen_at >= timezone.now() - timedelta(minutes=2)


class PullDay(models.Model):
    """Pulls of one image, counted per day: one row per repository, digest, tag, puller and
    day, bumped with one UPDATE per delivery (never a row per pull).

    A pull is a manifest GET reported on the pull endpoint (``registryui.events.pulls``);
    ``tag`` is blank when the client asked by digest (docker and containerd resolve the tag with
    a HEAD, then GET the digest), ``actor`` blank when the registry did not know the user.
    """

    repository = models.CharField(max_length=255)
    digest = models.CharField(max_length=135)
    tag = models.CharField(max_length=128, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    #: The latest pull of the day (the registry's event time, never ahead of ours).
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "repository", "digest"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "digest", "tag", "actor", "day"], name="pullday_key"
            )
        ]
        indexes = [
            models.Index(fields=["repository", "day"], name="pullday_repo_day"),
            models.Index(fields=["repository", "digest", "last_at"], name="pullday_repo_digest"),
            # The history's pruning (``pulls.prune``): a range of old days, not a scan.
            models.Index(fields=["day"], name="pullday_day"),
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest[:19]} {self.day}: {self.count}"


class PullTracking(models.Model):
    """The single row (pk=1) of the pull endpoint: since when pulls are recorded, and its
    counters for the status page."""

    #: Since when pulls are known: the first delivery on the pull endpoint with tracking on,
    #: moved up to the oldest day kept when older days are pruned (``PULL_HISTORY_DAYS``).
    #: "Never pulled" means "not since then".
    started_at = models.DateTimeField(null=True, blank=True)
    received = models.PositiveBigIntegerField(default=0)
    #: Manifest GETs by clients: counted into ``PullDay``.
    counted = models.PositiveBigIntegerField(default=0)
    #: The UI's own requests (sync, cleanup, events), told apart by user agent or account.
    own = models.PositiveBigIntegerField(default=0)
    #: Manifest HEADs (existence checks, the first step of a docker pull) and blob pulls.
    checks = models.PositiveBigIntegerField(default=0)
    #: Anything else: pushes or deletes sent here by mistake, invalid events.
    ignored = models.PositiveBigIntegerField(default=0)
    last_received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "pull tracking"

    def __str__(self) -> str:
        return f"{self.counted} pulls recorded"

    @classmethod
    def load(cls) -> PullTracking:
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @classmethod
    def bump(cls, counts: dict[str, int], **fields) -> None:
        """Add to the counters in one UPDATE; ``started_at`` is set once, by the first call."""
        values = {name: F(name) + n for name, n in counts.items() if n}
        values.update(fields)
        values["started_at"] = Coalesce(F("started_at"), Value(timezone.now()))
        if not cls.objects.filter(pk=1).update(**values):
            try:
                with transaction.atomic():
                    cls.objects.create(pk=1)
            except IntegrityError:
                pass  # another request made it first
            cls.objects.filter(pk=1).update(**values)
