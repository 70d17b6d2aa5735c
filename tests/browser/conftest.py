"""Playwright (Python) driving Debian's Chromium against a live server whose database holds the
sample images, synced from a real registry. Screenshots go to ``test-artifacts/screenshots/``.

Chromium is ``/usr/bin/chromium`` (never ``playwright install``), with the arguments of
docs/DEVELOPMENT.md. One browser per module; a fresh context (cookies, color scheme) per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.catalog.conftest import PUBLIC_HOST, Samples, samples, sync  # noqa: F401
from tests.personas import PASSWORD, Persona, make_personas

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "screenshots"
#: Generous: the machine is shared with other test runs.
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would then refuse ORM
    # calls made by the test itself ("cannot call this from an async context"). The calls are
    # synchronous and safe: allow them while the browser is up, then restore the setting.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Site:
    """The live server with the samples synced, and helpers to open pages as a persona."""

    url: str
    browser: object
    personas: dict[str, Persona]
    samples: Samples

    def context(self, *, color_scheme: str = "light", javascript: bool = True, persona=None):
        context = self.browser.new_context(
            color_scheme=color_scheme,
            java_script_enabled=javascript,
            viewport={"width": 1280, "height": 900},
            base_url=self.url,
        )
        context.set_default_timeout(TIMEOUT_MS)
        if persona is not None:
            self.log_in(context, persona)
        return context

    def log_in(self, context, persona: str) -> None:
        """Reuse a session made by Django's test client (the login form has its own test)."""
        client = Client()
        client.force_login(self.personas[persona].user)
        host = self.url.split("//", 1)[1].split(":", 1)[0]
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


@pytest.fixture
def site(browser, live_server, samples, transactional_db, settings) -> Site:  # noqa: F811
    settings.REGISTRY_URL = samples.process.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    settings.REGISTRY_RETRIES = 1
    sync(samples)
    return Site(live_server.url, browser, make_personas(), samples)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


__all__ = ["PASSWORD", "Site", "screenshot"]
