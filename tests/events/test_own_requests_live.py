"""A client that sends the UI's user agent is not the UI: with a real registry 2.8 that checks
passwords (htpasswd) and notifies a live server of the app on both endpoints, a push and a pull
by another account with ``registryui/…`` as its agent are webhooked and counted, and the UI's
own (its agent and its ``REGISTRY_USERNAME`` account, which the registry names) are not."""

from __future__ import annotations

import pytest

from registryui.catalog.models import Tag
from registryui.devtools.demo import pull_endpoint
from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.events.models import PullDay, PullTracking
from registryui.registry import RegistryClient
from registryui.registry.client import USER_AGENT
from registryui.webhooks.models import Delivery

from .support import DB_LOCK, TOKEN, NotifyingRegistry, endpoint, team_a_webhook, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ACCOUNTS = {"registryui-sync": "ui-secret", "mallory": "mallory-secret"}


@pytest.fixture
def authenticated_registry(serialized_live_server, registry_factory, settings, events_token):
    debug_port = free_port()
    host = serialized_live_server.url.removeprefix("http://")
    process = registry_factory(
        htpasswd=ACCOUNTS,
        notifications=[endpoint(serialized_live_server.url), pull_endpoint(host, TOKEN)],
        extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}},
    )
    settings.REGISTRY_URL = process.url
    settings.REGISTRY_RETRIES = 1
    settings.REGISTRY_USERNAME = "registryui-sync"
    settings.REGISTRY_PASSWORD = ACCOUNTS["registryui-sync"]
    settings.TOKEN_AUTH_ENABLED = False
    settings.PULL_TRACKING = True
    yield NotifyingRegistry(process, debug_port)
    # No delivery may reach the app while the test database is flushed.
    process.stop()
    with DB_LOCK:
        pass


def test_the_uis_agent_with_another_account_is_webhooked_and_counted(authenticated_registry):
    registry = authenticated_registry
    team_a_webhook()
    ui = RegistryClient(registry.url, username="registryui-sync", password="ui-secret")
    spoof = RegistryClient(
        registry.url, username="mallory", password="mallory-secret", user_agent=USER_AGENT
    )
    with ui, spoof:
        Seeder(ui).put("team-a/api", "by-the-ui")
        Seeder(spoof).put("team-a/api", "by-mallory")
        wait_for(
            lambda: Tag.objects.filter(repository__name="team-a/api").count() == 2,
            what="both pushes",
        )
        registry.settle()
        with DB_LOCK:
            pulled_before = PullTracking.load().received
        ui.get_manifest("team-a/api", "by-the-ui")
        spoof.get_manifest("team-a/api", "by-mallory")
        # Two manifest GETs, plus whatever the handler itself asked while applying the pushes.
        wait_for(
            lambda: PullTracking.load().received >= pulled_before + 2 and PullDay.objects.exists(),
            what="the pull events",
        )

    # Both pushes carry the UI's user agent; only the UI's account makes one its own.
    subjects = list(Delivery.objects.values_list("event_type", "payload__subject"))
    assert subjects == [("io.registryui.tag.pushed", "team-a/api:by-mallory")]
    assert Delivery.objects.get().payload["data"]["actor"] == "mallory"
    assert list(PullDay.objects.values_list("tag", "actor", "count")) == [
        ("by-mallory", "mallory", 1)
    ]
    tracking = PullTracking.load()
    assert tracking.counted == 1 and tracking.own >= 1
