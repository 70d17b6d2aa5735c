"""Pull history is bounded: days older than ``PULL_HISTORY_DAYS`` go in the sync worker's
housekeeping (``worker.prune`` → ``pulls.prune``), and pull tracking then counts as started
at the oldest day kept, which is what every reader takes "never pulled since" from.
``tests/cleanup/test_pull_rules.py`` checks the retention rules and the stale view after it."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from registryui.events import activity, pulls
from registryui.events.models import PullDay, PullTracking
from registryui.sync import worker

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "ab" * 32


def pulled(days_ago: int, *, count: int = 1, tag: str = "1.0") -> None:
    day = timezone.localdate() - timedelta(days=days_ago)
    PullDay.objects.create(
        repository="team-a/api",
        digest=DIGEST,
        tag=tag,
        day=day,
        count=count,
        last_at=timezone.make_aware(datetime.combine(day, time(12))),
    )


def midnight(days_ago: int) -> datetime:
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time.min))


def kept_days() -> list[int]:
    today = timezone.localdate()
    return sorted((today - day).days for day in PullDay.objects.values_list("day", flat=True))


@pytest.fixture
def history(settings):
    settings.PULL_HISTORY_DAYS = 400
    for days_ago in (0, 1, 399, 400, 401, 1000):
        pulled(days_ago)
    PullTracking.objects.create(pk=1, started_at=timezone.now() - timedelta(days=1200))


def test_the_worker_deletes_days_older_than_the_history_and_keeps_the_rest(history):
    worker.prune()
    assert kept_days() == [0, 1, 399, 400]
    # Pulls are known since the oldest day kept: "never pulled" now means "not since then".
    assert activity.tracking_since() == midnight(400)
    assert activity.by_image("team-a/api")[DIGEST].count == 4
    # Again: nothing more to delete, nothing moves.
    assert pulls.prune() == 0
    assert kept_days() == [0, 1, 399, 400]
    assert activity.tracking_since() == midnight(400)


def test_tracking_younger_than_the_history_keeps_its_start(history):
    started = timezone.now() - timedelta(days=30)
    PullTracking.objects.filter(pk=1).update(started_at=started)
    assert pulls.prune() == 2
    assert activity.tracking_since() == started


def test_a_shorter_history_deletes_more_and_zero_keeps_everything(history, settings):
    settings.PULL_HISTORY_DAYS = 0
    assert pulls.prune() == 0
    assert kept_days() == [0, 1, 399, 400, 401, 1000]
    settings.PULL_HISTORY_DAYS = 1
    assert pulls.prune() == 4
    assert kept_days() == [0, 1]
    assert activity.tracking_since() == midnight(1)
    assert activity.daily("team-a/api", days=3)[-2:] == [
        (timezone.localdate() - timedelta(days=1), 1),
        (timezone.localdate(), 1),
    ]
