"""Pull events into per-day counters (issue 16): cheap, and never in the way of pushes.

The registry posts pulls to a second endpoint (``/events/registry/pulls``) with its own queue,
configured to ``ignore`` pushes and deletes, so that thousands of pulls (a sync's HEADs, a
deployment's GETs) never queue in front of the push events of ``handler``. Here:

- Only manifest GETs by clients count as pulls. A HEAD is an existence check (docker and
  containerd resolve a tag with a HEAD, then GET the digest, and skip the GET when they have the
  image); blob pulls are the layers of a pull already counted.
- The UI's own requests (sync, cleanup, the push endpoint's fetches) are not pulls: they carry
  the client's user agent (``registry.client.USER_AGENT``, ``registryui/…``) and, when the UI
  authenticates, the registry names its account (``own.made_by_this_ui``); they are left out.
- Nothing asks the registry: an event's repository, digest and tag are checked against the
  Distribution grammar and counted as they are. A pull of an image the catalog does not hold
  costs a row and shows nowhere (every page reads pulls through the catalog's tags).
- One delivery becomes at most one UPDATE (or INSERT) per distinct image, tag, user and day.
- Days older than ``PULL_HISTORY_DAYS`` are deleted by ``prune`` (the sync worker's
  housekeeping), which moves ``PullTracking.started_at`` up to the oldest day kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from registryui.lib.reference import is_valid_digest, is_valid_name, is_valid_tag
from registryui.lib.untrusted import clean_text, parse_timestamp
from registryui.registry.mediatypes import MANIFEST_TYPES

from .models import PullDay, PullTracking
from .own import made_by_this_ui


@dataclass(frozen=True)
class PullKey:
    repository: str
    digest: str
    tag: str
    actor: str
    day: date


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _part(raw: dict, name: str) -> dict:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def is_own(raw: dict) -> bool:
    """The UI's own request (sync, cleanup, the push endpoint's fetches): not a pull."""
    return made_by_this_ui(
        _text(_part(raw, "request").get("useragent")), _text(_part(raw, "actor").get("name"))
    )


def classify(raw: Any) -> tuple[str, PullKey | None, datetime | None]:
    """(counter, key, time): ``counted`` with the key of a client's manifest GET, else the
    counter the event goes to (``own``, ``checks``, ``ignored``) and no key."""
    if not isinstance(raw, dict) or _text(raw.get("action")) != "pull":
        return "ignored", None, None
    target = _part(raw, "target")
    repository, digest = target.get("repository"), target.get("digest")
    tag = target.get("tag") or ""
    if not (
        isinstance(repository, str)
        and is_valid_name(repository)
        and isinstance(digest, str)
        and is_valid_digest(digest)
        and isinstance(tag, str)
        and (not tag or is_valid_tag(tag))
    ):
        return "ignored", None, None
    if is_own(raw):
        return "own", None, None
    if _text(target.get("mediaType")) not in MANIFEST_TYPES:
        return "checks", None, None  # a blob: part of a pull counted by its manifest GET
    if _text(_part(raw, "request").get("method")).upper() != "GET":
        return "checks", None, None
    now = timezone.now()
    when = parse_timestamp(raw.get("timestamp"))
    if when is None or when > now:
        when = now
    actor = _text(_part(raw, "actor").get("name"))[:150]
    day = timezone.localdate(when)
    return "counted", PullKey(repository, digest, tag, actor, day), when


def record_pulls(events: list[Any]) -> dict[str, int]:
    """Count one delivery's pull events; the counters by outcome."""
    counts: Counter[str] = Counter()
    pulls: Counter[PullKey] = Counter()
    latest: dict[PullKey, datetime] = {}
    for raw in events:
        outcome, key, when = classify(raw)
        counts[outcome] += 1
        if key is not None and when is not None:
            pulls[key] += 1
            latest[key] = max(latest.get(key, when), when)
    # One transaction: one commit per delivery, however many rows it touches.
    with transaction.atomic():
        for key, n in pulls.items():
            _add(key, n, latest[key])
        PullTracking.bump({"received": len(events), **counts}, last_received_at=timezone.now())
    return dict(counts)


def _add(key: PullKey, n: int, when: datetime) -> None:
    """Upsert: one UPDATE, or an INSERT when the row is new (a race falls back to the UPDATE)."""
    rows = PullDay.objects.filter(
        repository=key.repository, digest=key.digest, tag=key.tag, actor=key.actor, day=key.day
    )
    bump = {
        "count": F("count") + n,
        "last_at": Greatest(F("last_at"), Value(when, DateTimeField())),
    }
    if rows.update(**bump):
        return
    try:
        with transaction.atomic():
            PullDay.objects.create(
                repository=key.repository,
                digest=key.digest,
                tag=key.tag,
                actor=key.actor,
                day=key.day,
                count=n,
                last_at=when,
            )
    except IntegrityError:
        rows.update(**bump)


def prune(today: date | None = None) -> int:
    """Delete the days of pull history older than ``PULL_HISTORY_DAYS`` (0: none); the rows
    deleted.

    Pulls are then known since the oldest day kept, and ``PullTracking.started_at`` says so:
    every reader already treats "tracking started" as "pulls known since", so "never pulled
    since <date>" stays true, and a rule or stale view whose window reaches further back
    keeps every image (as while tracking is young) rather than take an image pulled before
    the history's start for one never pulled.
    """
    days = settings.PULL_HISTORY_DAYS
    if not days:
        return 0
    first_kept = (today or timezone.localdate()) - timedelta(days=days)
    since = timezone.make_aware(datetime.combine(first_kept, time.min))
    with transaction.atomic():
        PullTracking.objects.filter(pk=1, started_at__lt=since).update(started_at=since)
        deleted, _ = PullDay.objects.filter(day__lt=first_kept).delete()
    return deleted
