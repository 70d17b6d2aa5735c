"""Nothing is lost when the worker that sends webhooks dies mid-send: the real sync worker
(``sync_registry --loop``, which runs the dispatcher) is killed with SIGKILL while a receiver
holds a delivery open; a new worker sends that delivery again and then the rest, in order."""

from __future__ import annotations

import json

import pytest

from tests.events.support import WorkerProcess, django_state, subprocess_env

from .support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SETUP = """
from registryui.teams.models import Grant, Level, Team
from registryui.webhooks.emit import Occurrence, emit
from registryui.webhooks.models import Endpoint
team = Team.objects.create(name="team-a", slug="team-a")
Grant.objects.create(team=team, pattern="team-a/*", level=Level.VIEW)
hook = Endpoint.objects.create(
    team=team, name="ci", url=URL, events=["push"], repository_pattern="team-a/*"
)
ids = []
for tag in ("1", "2", "3", "4"):
    occurrence = Occurrence(
        type="io.registryui.tag.pushed", repository="team-a/api", subject=f"team-a/api:{tag}"
    )
    emit(occurrence)
    ids.append(occurrence.id)
result = {"ids": ids, "secret": hook.secret}
"""

STATE = """
from registryui.webhooks.models import Delivery
result = [
    [d.event_id, d.state, d.attempts, d.last_status]
    for d in Delivery.objects.order_by("id")
]
"""


def test_a_delivery_in_flight_when_the_worker_dies_is_sent_again_by_the_next(
    worker_database, registry, receiver_factory
):
    receiver = receiver_factory(hang=30, hang_first=1)
    env = subprocess_env(
        worker_database,
        registry.url,
        WEBHOOK_BLOCKED_NETWORKS="",
        WEBHOOK_TIMEOUT="3",
        WEBHOOK_BACKOFF_BASE="0.2",
    )
    setup = django_state(env, f"URL = {json.dumps(receiver.url)}\n{SETUP}")
    ids, secret = setup["ids"], setup["secret"]

    first = WorkerProcess(["--loop", "--interval", "3600"], env).start()
    try:
        wait_for(lambda: receiver.in_flight == 1, timeout=60, what="the first send")
        first.kill()  # SIGKILL: no chance to record anything
    finally:
        first.kill()
    assert [row[1:] for row in django_state(env, STATE)] == [["pending", 0, None]] * 4

    second = WorkerProcess(["--loop", "--interval", "3600"], env).start()
    try:
        # The dead worker's lease runs out (3.05 + WEBHOOK_TIMEOUT + 5 s), then all go out.
        rows = wait_for(
            lambda: (
                (state := django_state(env, STATE))
                and all(row[1] == "delivered" for row in state)
                and state
            ),
            timeout=90,
            what="every delivery to be delivered",
        )
    finally:
        second.kill()

    answered = [r for r in receiver.received if r.status == 200 and r.at]
    got = [r.json["id"] for r in answered]
    # The held delivery came again (at least once), then the others, in order, none lost.
    assert got[-4:] == ids
    assert all(r.signature_ok(secret) for r in answered)
    assert [row[0] for row in rows] == ids
    assert rows[0][2] == 1  # the killed attempt was never recorded; the resend was
