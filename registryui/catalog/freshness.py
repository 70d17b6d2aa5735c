"""How fresh is what a page shows? Answered from the sync records alone, in one query.

Pages render from the database whatever the registry's state; this module tells them what to
say about it: when the catalog and a repository were last synced, whether the latest sync of a
repository failed, whether the registry was unreachable at the latest full sync, and whether
the data is stale. It never calls the registry: a page view must not wait on a registry that
may be down.

Rules:
- A full sync (``SyncRun.scope == ""``) *refreshed the catalog* when it finished without a
  run-level error (``SyncRun.error`` blank): the catalog was listed completely and the run was
  not interrupted. Failures of single repositories do not count against the catalog; they are
  shown on those repositories' pages (``Repository.sync_failed``).
- The registry is *unreachable* when the latest finished full sync recorded a catalog-level
  error (``SyncRunError.repository == ""``) with code UNREACHABLE, TIMEOUT or UNAVAILABLE.
- The catalog is *stale* when no full sync refreshed it within ``SYNC_STALE_AFTER`` seconds
  (or never). A repository's data is stale when, in addition, the repository itself was not
  synced within that time (the notification handler or ``--repository`` may keep one
  repository fresh between full syncs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from .models import Repository, SyncRun, SyncRunError

#: Catalog-level error codes that mean "we could not talk to the registry at all".
UNREACHABLE_CODES = ("UNREACHABLE", "TIMEOUT", "UNAVAILABLE")


@dataclass(frozen=True)
class Freshness:
    #: When the latest full sync that refreshed the catalog finished (None: never).
    catalog_synced_at: datetime | None = None
    #: The latest finished full sync, whatever its outcome.
    last_run_at: datetime | None = None
    #: The registry could not be reached at the latest full sync.
    unreachable: bool = False
    #: The run-level error of the latest full sync ('' when it had none).
    last_run_error: str = ""
    #: No refresh within SYNC_STALE_AFTER seconds (or never synced).
    stale: bool = True
    stale_after: int = 3600
    #: Set on a repository's page.
    repository: str = ""
    repository_synced_at: datetime | None = None
    repository_failed: bool = False
    repository_error: str = ""
    repository_error_at: datetime | None = None

    @property
    def never_synced(self) -> bool:
        return self.catalog_synced_at is None and self.last_run_at is None

    @property
    def synced_at(self) -> datetime | None:
        """When the data this page shows was last refreshed."""
        if self.repository:
            return _latest(self.repository_synced_at, self.catalog_synced_at)
        return self.catalog_synced_at


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def stale_after() -> int:
    return int(getattr(settings, "SYNC_STALE_AFTER", 3600))


def catalog_freshness(*, now: datetime | None = None) -> Freshness:
    """The catalog's freshness (one query, served by the ``syncrun_full_finished`` index)."""
    now = now or timezone.now()
    limit = stale_after()
    full_runs = SyncRun.objects.filter(scope="", finished_at__isnull=False)
    latest = (
        full_runs.order_by("-finished_at")
        .annotate(
            unreachable=Exists(
                SyncRunError.objects.filter(
                    run=OuterRef("pk"), repository="", code__in=UNREACHABLE_CODES
                )
            ),
            refreshed_at=Subquery(
                full_runs.filter(error="").order_by("-finished_at").values("finished_at")[:1]
            ),
        )
        .values("finished_at", "error", "unreachable", "refreshed_at")
        .first()
    )
    if latest is None:
        return Freshness(stale=True, stale_after=limit)
    refreshed_at = latest["refreshed_at"]
    return Freshness(
        catalog_synced_at=refreshed_at,
        last_run_at=latest["finished_at"],
        unreachable=bool(latest["unreachable"]),
        last_run_error=latest["error"],
        stale=refreshed_at is None or now - refreshed_at > timedelta(seconds=limit),
        stale_after=limit,
    )


def repository_freshness(repository: Repository, *, now: datetime | None = None) -> Freshness:
    """The freshness of one repository's page: the catalog's plus the repository's own record
    (no query beyond ``catalog_freshness``'s: the repository row is already loaded)."""
    now = now or timezone.now()
    base = catalog_freshness(now=now)
    own = repository.last_synced_at
    own_fresh = own is not None and now - own <= timedelta(seconds=base.stale_after)
    return replace(
        base,
        repository=repository.name,
        repository_synced_at=own,
        repository_failed=repository.sync_failed,
        repository_error=repository.last_sync_error if repository.sync_failed else "",
        repository_error_at=repository.last_sync_error_at if repository.sync_failed else None,
        stale=base.stale and not own_fresh,
    )
