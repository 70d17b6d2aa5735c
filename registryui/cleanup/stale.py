"""The stale images report (issue 16): images nobody pulled in N days and nobody pushed in M.

An image here is a manifest in one repository, with the tags that point at it there. It is
stale when

- no pull of it in that repository was recorded since ``now - pulled_days`` (an image never
  pulled since pull tracking started counts, and the page says since when tracking runs), and
- the latest push of any of its tags is older than ``now - pushed_days``: the recorded push
  time, or for a tag with none the latest it can have been (``Tag.pushed_by``).

Everything is read through the resolver (``visible_tags``): a user sees only images of
repositories they may see, and the bytes each deletion would free as ``Freed.as_seen_by``.
Pure database reads, like the confirmation pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Max
from django.utils import timezone

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.events import activity
from registryui.events.models import PullDay
from registryui.lib.iters import chunked
from registryui.teams.permissions import visible_tags

from .freed import Freed, estimate_freed

#: The report stops here: a longer list is a job for a retention policy.
MAX_IMAGES = 1000
#: Images described per page (tags, pulls, the bytes each one frees alone).
PER_PAGE = 50


@dataclass
class StaleImage:
    repository: Repository
    manifest: Manifest
    tags: list[str]
    #: The latest push of its tags: exact when every tag's push was recorded, else a bound.
    pushed: datetime
    pushed_exact: bool
    last_pulled: datetime | None
    pulls: int
    freed: Freed = field(default_factory=Freed)

    @property
    def digest(self) -> str:
        return self.manifest.digest


@dataclass
class StaleReport:
    pulled_days: int
    pushed_days: int
    now: datetime
    tracking_since: datetime | None
    #: Every stale image (up to ``MAX_IMAGES``): repository, manifest, latest push.
    rows: list[tuple[Repository, Manifest, datetime]]
    #: More images matched than ``MAX_IMAGES``.
    truncated: bool
    #: What deleting all of them frees (counted once: blobs shared between them come back).
    freed: Freed
    #: The images of the page shown, described (``page``).
    images: list[StaleImage] = field(default_factory=list)
    pager: Page | None = None

    def page(self, number: int) -> StaleReport:
        """Describe the images of page ``number`` (an ``InvalidPage`` beyond the last)."""
        self.pager = Paginator(self.rows, PER_PAGE, allow_empty_first_page=True).page(number)
        self.images = _describe(list(self.pager.object_list))
        for image in self.images:
            image.freed = estimate_freed({image.repository.pk: [image.digest]})
        return self

    @property
    def tracking_younger(self) -> bool:
        """Pull tracking has not run for ``pulled_days`` yet: "not pulled" covers less."""
        cutoff = self.now - timedelta(days=self.pulled_days)
        return self.tracking_since is None or self.tracking_since > cutoff

    @property
    def by_repository(self) -> list[tuple[Repository, list[StaleImage]]]:
        groups: dict[int, tuple[Repository, list[StaleImage]]] = {}
        for image in self.images:
            groups.setdefault(image.repository.pk, (image.repository, []))[1].append(image)
        return list(groups.values())


def find_stale(
    user, *, pulled_days: int, pushed_days: int, now: datetime | None = None
) -> StaleReport:
    now = now or timezone.now()
    pull_cutoff = now - timedelta(days=pulled_days)
    push_cutoff = now - timedelta(days=pushed_days)
    # Images whose every tag was pushed before the cutoff, oldest push first.
    candidates = list(
        visible_tags(user, Tag.objects.all())
        .with_pushed_by()
        .values("repository_id", "manifest_id")
        .annotate(pushed=Max("pushed_sort"))
        .filter(pushed__lt=push_cutoff)
        .order_by("pushed", "repository_id", "manifest_id")
        .values_list("repository_id", "manifest_id", "pushed")[: MAX_IMAGES * 2]
    )
    repositories = Repository.objects.in_bulk({r for r, _, _ in candidates})
    manifests = Manifest.objects.only(
        "id", "digest", "total_size", "created", "kind", "platforms"
    ).in_bulk({m for _, m, _ in candidates})
    # Pulled recently: one query on the pulls of the candidates' repositories since the cutoff.
    names = {repo.name for repo in repositories.values()}
    recent: set[tuple[str, str]] = set()
    for chunk in chunked(names):
        recent.update(
            PullDay.objects.filter(repository__in=chunk, last_at__gte=pull_cutoff)
            .values_list("repository", "digest")
            .distinct()
        )
    stale = [
        (repositories[r], manifests[m], pushed)
        for r, m, pushed in candidates
        if (repositories[r].name, manifests[m].digest) not in recent
    ]
    truncated = len(stale) > MAX_IMAGES
    stale = stale[:MAX_IMAGES]
    deletions: dict[int, list[str]] = {}
    for repository, manifest, _ in stale:
        deletions.setdefault(repository.pk, []).append(manifest.digest)
    return StaleReport(
        pulled_days=pulled_days,
        pushed_days=pushed_days,
        now=now,
        tracking_since=activity.tracking_since(),
        rows=stale,
        truncated=truncated,
        freed=estimate_freed(deletions) if deletions else Freed(),
    )


def _describe(rows: list[tuple[Repository, Manifest, datetime]]) -> list[StaleImage]:
    """Tags, push exactness and pulls of each stale image (a few queries per repository)."""
    by_repository: dict[int, list[tuple[Repository, Manifest, datetime]]] = {}
    for row in rows:
        by_repository.setdefault(row[0].pk, []).append(row)
    described: dict[tuple[int, int], StaleImage] = {}
    for items in by_repository.values():
        repository = items[0][0]
        ids = [m.pk for _, m, _ in items]
        tags: dict[int, list[str]] = {}
        exact: dict[int, bool] = {}
        for manifest_id, name, pushed_at in (
            Tag.objects.filter(repository=repository, manifest_id__in=ids)
            .order_by("name")
            .values_list("manifest_id", "name", "pushed_at")
        ):
            tags.setdefault(manifest_id, []).append(name)
            exact[manifest_id] = exact.get(manifest_id, True) and pushed_at is not None
        pulls = activity.by_image(repository.name, [m.digest for _, m, _ in items])
        for _, manifest, pushed in items:
            seen = pulls.get(manifest.digest, activity.NEVER)
            described[(repository.pk, manifest.pk)] = StaleImage(
                repository=repository,
                manifest=manifest,
                tags=tags.get(manifest.pk, []),
                pushed=pushed,
                pushed_exact=exact.get(manifest.pk, False),
                last_pulled=seen.last_at,
                pulls=seen.count,
            )
    return [described[(r.pk, m.pk)] for r, m, _ in rows]
