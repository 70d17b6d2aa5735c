"""Issue 11, "the registry hangs": with the registry frozen (SIGSTOP), a delete took 121 s
(4 x 30 s read timeouts) and then a 502 from the proxy. A person waiting on a page now gets an
answer within ``REGISTRY_INTERACTIVE_TIMEOUT`` with a sentence saying why, nothing changed, and
while the registry is known to be down the next action answers at once. The sync keeps its own
long timeouts. A real registry process is frozen with SIGSTOP (and thawed in teardown)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from registryui.catalog import upstream
from registryui.catalog.models import Tag
from registryui.core.models import AuditEntry
from registryui.devtools.registry import RegistryProcess
from registryui.devtools.seed import Seeder
from registryui.sync.syncer import Syncer

BUDGET = 2.0
#: Room for a loaded test machine: without the budget the first delete waits 4 x 30 s.
SLACK = 5.0

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(settings, registry: RegistryProcess) -> Iterator[dict[str, str]]:
    """team-a/api:1.0 and :2.0 pushed and synced; then the registry process is stopped."""
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 3  # what a deployment has: the sync would retry, pages must not
    settings.REGISTRY_READ_TIMEOUT = 30.0
    settings.REGISTRY_INTERACTIVE_TIMEOUT = BUDGET
    settings.REGISTRY_DOWN_FOR = 15.0
    seeder = Seeder(upstream.build_client(retries=0))
    digests = {tag: seeder.put("team-a/api", tag, note=tag) for tag in ("1.0", "2.0")}
    run = Syncer(upstream.get_client(), concurrency=2).run()
    assert run.ok
    os.killpg(registry.process.pid, signal.SIGSTOP)
    try:
        yield digests
    finally:
        os.killpg(registry.process.pid, signal.SIGCONT)
        upstream.forget_failures()


def tags() -> dict[str, str]:
    return dict(
        Tag.objects.filter(repository__name="team-a/api").values_list("name", "manifest__digest")
    )


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_delete_answers_within_the_budget_and_then_at_once(frozen, personas, registry):
    client = personas["a_deleter"].client()
    before = tags()
    confirm = {"confirm": f"1.0@{frozen['1.0']}"}

    response, took = timed(lambda: client.post("/r/team-a/api:1.0/-/delete", confirm, follow=True))

    assert took < BUDGET + SLACK, took
    html = response.content.decode()
    assert "The registry did not answer within 2 seconds." in html
    assert tags() == before
    entry = AuditEntry.objects.get(action="delete_tag")
    assert entry.result == AuditEntry.Result.FAILED and entry.details["code"] == "TIMEOUT"

    # Known down: the next action does not wait again, nor even send a request.
    with upstream.interactive():
        stats = upstream.get_client().stats  # shared by every web request's bound client
    sent = stats.total
    response, took = timed(
        lambda: client.post(
            "/r/team-a/api:2.0/-/delete-image", {"confirm": f"2.0@{frozen['2.0']}"}, follow=True
        )
    )
    assert "The registry did not answer a moment ago" in response.content.decode()
    assert stats.total == sent
    assert took < BUDGET + SLACK, took  # (0.06 s on an idle machine)
    assert tags() == before

    # Thawed, and the moment past: the registry still has both tags.
    os.killpg(registry.process.pid, signal.SIGCONT)
    upstream.forget_failures()
    assert sorted(upstream.build_client(retries=0).list_tags("team-a/api")) == ["1.0", "2.0"]


def test_a_retag_answers_within_the_budget(frozen, personas):
    client = personas["a_deleter"].client()
    before = tags()
    response, took = timed(
        lambda: client.post(
            "/r/team-a/api:1.0/-/retag", {"new_tag": "3.0", "confirmed_old": ""}, follow=True
        )
    )
    assert took < BUDGET + SLACK, took
    assert "The registry did not answer within 2 seconds." in response.content.decode()
    assert tags() == before


def test_the_sync_keeps_its_own_timeouts(frozen, settings):
    """Outside a web request nothing is cut short: the sync's client has the long read timeout
    and the retries of the settings."""
    client = upstream.get_client()
    assert client.before_send is None
    assert client.timeout == (settings.REGISTRY_CONNECT_TIMEOUT, 30.0)
    assert client._retry.total == 3
    with upstream.interactive() as budget:
        bound = upstream.get_client()
        assert bound is upstream.get_client()  # one client per request
        assert bound.before_send == budget.before_send and bound._retry.total == 0
        assert bound.session is upstream.get_client().session
    assert upstream.get_client().before_send is None
