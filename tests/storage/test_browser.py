"""The storage page in Debian's Chromium, light and dark, 1280 and 390 px wide, under the
production CSP: screenshots in test-artifacts/screenshots/storage-*.png, no console error
(a blocked style or script would be one), no sideways scroll, and the charts drawn."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.browser.support import TIMEOUT_MS, browser, screenshot  # noqa: F401
from tests.personas import make_personas

from .support import BASE_OS, BASE_RUNTIME, Scenario, spec
from .test_disk import scenario  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def grown(scenario: Scenario, live_server) -> Scenario:  # noqa: F811
    """Two more syncs, each after a push: the growth line has steps."""
    scenario.push("team-a/web:2", spec("web-2", BASE_OS, BASE_RUNTIME, size=30000))
    scenario.sync()
    scenario.push("team-b/worker:2", spec("worker-2", BASE_RUNTIME, size=20000))
    scenario.sync()
    return scenario


@pytest.mark.parametrize("persona", ["superuser", "a_viewer"])
def test_the_storage_page_in_both_themes_and_widths(browser, live_server, grown, persona):  # noqa: F811
    user = make_personas()[persona].user
    client = Client()
    client.force_login(user)
    host = live_server.url.split("//", 1)[1].split(":", 1)[0]
    for scheme in ("light", "dark"):
        for width in (1280, 390):
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                color_scheme=scheme,
                base_url=live_server.url,
            )
            context.set_default_timeout(TIMEOUT_MS)
            context.add_cookies(
                [
                    {
                        "name": django_settings.SESSION_COOKIE_NAME,
                        "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                        "domain": host,
                        "path": "/",
                    }
                ]
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
            page.goto("/storage/")
            assert page.locator("svg.line-chart path.line").count() == 1
            assert page.locator("[data-testid=repository-figures] svg.bar-chart").count() >= 3
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{scheme} {width}: the page scrolls sideways by {overflow}px"
            screenshot(page, f"storage-{persona}-{width}-{scheme}")
            assert errors == [], errors
            context.close()
