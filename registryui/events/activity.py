"""Reading the pull activity ``pulls`` records: per image (digest) of a repository, per tag,
per day. Callers pass repositories the resolver already let them see; nothing here decides
access."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from registryui.lib.iters import chunked

from .models import PullDay, PullTracking


@dataclass(frozen=True)
class ImagePulls:
    """Pulls of one image in one repository (by any of its tags or by digest)."""

    count: int = 0
    last_at: datetime | None = None


NEVER = ImagePulls()


def tracking_since() -> datetime | None:
    """When pull tracking started (its first delivery); None: it never did."""
    return PullTracking.objects.filter(pk=1).values_list("started_at", flat=True).first()


def by_image(repository: str, digests=None) -> dict[str, ImagePulls]:
    """digest → pulls of that image in ``repository`` (all time); only pulled digests."""
    result: dict[str, ImagePulls] = {}
    rows = PullDay.objects.filter(repository=repository)
    batches = [None] if digests is None else list(chunked(set(digests)))
    for batch in batches:
        selected = rows if batch is None else rows.filter(digest__in=batch)
        for digest, count, last in (
            selected.values("digest")
            .annotate(n=Sum("count"), last=Max("last_at"))
            .values_list("digest", "n", "last")
        ):
            result[digest] = ImagePulls(count or 0, last)
    return result


def by_tag(repository: str, tag: str, digest: str) -> ImagePulls:
    """Pulls that named this tag while it pointed at ``digest``."""
    found = PullDay.objects.filter(repository=repository, tag=tag, digest=digest).aggregate(
        n=Sum("count"), last=Max("last_at")
    )
    return ImagePulls(found["n"] or 0, found["last"])


def pullers(repository: str, digest: str, *, limit: int = 10) -> list[tuple[str, int, datetime]]:
    """Who pulled this image (``""``: anonymous), most pulls first: (name, count, last)."""
    return list(
        PullDay.objects.filter(repository=repository, digest=digest)
        .values("actor")
        .annotate(n=Sum("count"), last=Max("last_at"))
        .order_by("-n", "actor")
        .values_list("actor", "n", "last")[:limit]
    )


def daily(repository: str, *, days: int = 30, today: date | None = None) -> list[tuple[date, int]]:
    """Pulls per day of the repository over the last ``days`` days, oldest first, zeros
    included (one grouped query on the ``(repository, day)`` index)."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    counts = dict(
        PullDay.objects.filter(repository=repository, day__gte=first, day__lte=today)
        .values("day")
        .annotate(n=Sum("count"))
        .values_list("day", "n")
    )
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)
    ]
