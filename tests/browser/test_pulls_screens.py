"""Screenshots of issue 16's pages at 1280 and 390 px, light and dark: the repository page's
pull sparkline and the stale images view (the audit journey checks them too). A real registry
with the samples, synced; pulls delivered through the app's pull endpoint in the shape 2.8
posts them, spread over the last weeks; the pages rendered by the live server in Chromium."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.events.models import PullDay, PullTracking
from tests.events.support import TOKEN, V1, pull_event
from tests.personas import make_personas
from tests.support import PUBLIC_HOST, sync

from .support import TIMEOUT_MS, browser, screenshot  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Pulls per day, newest last, for team-a/api:1.5 (the sparkline's shape).
SHAPE = [0, 1, 3, 2, 0, 0, 4, 6, 5, 2, 1, 0, 0, 3, 8, 9, 7, 2, 1, 0, 0, 2, 4, 6, 11, 9, 4, 1, 0, 3]


@pytest.fixture
def site(browser, live_server, transactional_db, settings, samples):  # noqa: F811
    digests = samples.digests
    settings.REGISTRY_URL = samples.process.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    settings.PULL_TRACKING = True
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    sync(None)
    now = timezone.now()
    Tag.objects.update(first_seen_at=now - timedelta(days=45), changed_at=now - timedelta(days=45))
    client = Client()
    digest = digests["team-a/api:1.5"]
    # Oldest first: each day's rows are moved back before the next day's pulls arrive.
    for days_ago in range(len(SHAPE) - 1, -1, -1):
        count = SHAPE[len(SHAPE) - 1 - days_ago]
        events = []
        for _ in range(count):
            event = pull_event("team-a/api", "1.5", digest)
            event["request"] = {"method": "GET", "useragent": "containerd/1.7"}
            event["actor"] = {"name": "ci-deploy"}
            events.append(event)
        if events:
            client.post(
                "/events/registry/pulls",
                data=json.dumps({"events": events}),
                content_type=V1,
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            when = now - timedelta(days=days_ago)
            PullDay.objects.filter(day=timezone.localdate()).update(
                day=timezone.localdate(when), last_at=when
            )
    PullTracking.objects.update(started_at=now - timedelta(days=40))
    return live_server.url


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_sparkline_and_the_stale_view(site, browser, width, scheme):  # noqa: F811
    personas = make_personas()
    client = Client()
    client.force_login(personas["superuser"].user)
    context = browser.new_context(
        color_scheme=scheme, viewport={"width": width, "height": 900}, base_url=site
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "domain": site.split("//", 1)[1].split(":", 1)[0],
                "path": "/",
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto("/r/team-a/api")
        caption = page.locator("figure.sparkline figcaption").inner_text()
        assert caption.startswith(f"{sum(SHAPE)} pulls in the last 30 days")
        assert page.locator("figure.sparkline polyline").count() == 1
        screenshot(page, f"pulls-repository-{width}-{scheme}")
        page.goto("/r/team-a/api:1.5")
        assert "ci-deploy" in page.locator(".pullers").inner_text()
        screenshot(page, f"pulls-tag-{width}-{scheme}")
        page.goto("/stale/?pulled=7&pushed=30")
        rows = page.locator("table.stale tbody tr")
        assert rows.count() >= 3
        api_tags = page.locator('section[data-repository="team-a/api"] .tag-name')
        assert "1.4" in api_tags.all_inner_texts()
        assert "1.5" not in api_tags.all_inner_texts()  # pulled this week
        screenshot(page, f"pulls-stale-{width}-{scheme}")
        # Nothing sticks out sideways; the CSP let everything load.
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow
        assert not [e for e in errors if "Content Security Policy" in e]
    finally:
        context.close()
