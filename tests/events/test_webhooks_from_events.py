"""Registry notifications become outgoing webhooks: a real registry notifies a live server of
the app, whose handler queues deliveries for what it applied. The handler only writes rows, so
no receiver (here: none is even listening) can slow a notification down; the UI's own deletes
come back from the registry already applied and are reported once, from the audit log."""

from __future__ import annotations

import subprocess

import pytest

from registryui.catalog.models import Repository, Tag
from registryui.cleanup.actions import Actor, delete_tags
from registryui.devtools.images import ImageSpec, skopeo_copy, skopeo_digest
from registryui.webhooks.models import Delivery

from .support import DB_LOCK, team_a_webhook, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def deliveries() -> list[tuple[str, str]]:
    return list(Delivery.objects.order_by("id").values_list("event_type", "payload__subject"))


def test_pushes_and_deletes_outside_the_ui_queue_one_delivery_each(notifying_registry, layout):
    registry = notifying_registry
    team_a_webhook()
    layout.add_image("one", ImageSpec(files={"a": b"1"}))
    layout.add_image("two", ImageSpec(files={"a": b"2"}))
    skopeo_copy(layout, "one", f"{registry.host}/team-a/api:1.0")
    skopeo_copy(layout, "two", f"{registry.host}/team-a/api:2.0")
    skopeo_copy(layout, "one", f"{registry.host}/team-b/app:1.0")  # not the team's
    one = skopeo_digest(f"{registry.host}/team-a/api:1.0")
    two = skopeo_digest(f"{registry.host}/team-a/api:2.0")
    wait_for(lambda: Tag.objects.filter(repository__name="team-b/app").exists(), timeout=20)
    registry.settle()

    assert deliveries() == [
        ("io.registryui.tag.pushed", "team-a/api:1.0"),
        ("io.registryui.tag.pushed", "team-a/api:2.0"),
    ]
    pushed = Delivery.objects.get(payload__subject="team-a/api:2.0")
    assert pushed.payload["data"]["digest"] == two
    assert pushed.payload["data"]["via"] == "registry"
    assert pushed.state == Delivery.State.PENDING and pushed.attempts == 0

    # Deleted at the registry by someone else (skopeo): the handler applies it and reports it.
    subprocess.run(
        ["skopeo", "delete", "--tls-verify=false", f"docker://{registry.host}/team-a/api@{one}"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    wait_for(lambda: not Tag.objects.filter(repository__name="team-a/api", name="1.0").exists())
    registry.settle()
    assert deliveries()[-1] == ("io.registryui.image.deleted", f"team-a/api@{one}")

    # Deleted through the UI: reported once (from the audit entry), although the registry
    # notifies the app of the same delete afterwards.
    before = len(deliveries())
    with DB_LOCK:  # the live server's requests and this thread share one SQLite database
        execution = delete_tags(
            Repository.objects.get(name="team-a/api"), {"2.0": two}, Actor(name="ui-user")
        )
    assert execution.ok, execution.error
    registry.settle()
    assert deliveries()[before:] == [("io.registryui.image.deleted", f"team-a/api@{two}")]
    assert Delivery.objects.order_by("id").last().payload["data"]["actor"] == "ui-user"
