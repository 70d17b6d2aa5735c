"""Playwright (Python) driving Debian's Chromium against a live server whose database holds the
sample images, synced from a real registry. Screenshots go to ``test-artifacts/screenshots/``.

Chromium is ``/usr/bin/chromium`` (never ``playwright install``), with the arguments of
docs/DEVELOPMENT.md. One browser per module; a fresh context (cookies, color scheme) per test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.personas import PASSWORD, Persona, make_personas
from tests.support import PUBLIC_HOST, Samples, sync

from .support import TIMEOUT_MS, browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


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


__all__ = ["PASSWORD", "Site"]
