"""The pages of issue 17 in Chromium, at 1280 and 390 px, light and dark, through the browser
audit's checks (sideways scroll, broken digests, axe, focus): the tag list with its badges and
hidden signature tags, the "Attached" section and lineage, a provenance, the SBOM table, a
Helm chart, search by what is attached, and the cleanup confirmation that lists referrers.
Screenshots: ``test-artifacts/screenshots/audit-<width>-<scheme>-attach-*.png``."""

from __future__ import annotations

import pytest

from registryui.devtools.artifacts import push_attached_samples
from registryui.registry import RegistryClient
from tests.attach.support import attached_pages
from tests.browser.support import browser  # noqa: F401
from tests.browser.test_audit import Audit
from tests.personas import make_personas
from tests.support import PUBLIC_HOST, sync


@pytest.fixture
def site(browser, live_server, registry, transactional_db, settings):  # noqa: F811
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    settings.REGISTRY_RETRIES = 1
    with RegistryClient(registry.url) as client:
        pushed = push_attached_samples(client)
    sync(None)
    return live_server.url, pushed


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_attached_pages_pass_the_audit(site, browser, width, scheme):  # noqa: F811
    url, pushed = site
    audit = Audit(url, browser, width, scheme, make_personas())
    try:
        attached_pages(audit, pushed)
    finally:
        audit.close()
    assert len(audit.pages) == 13
    assert not audit.findings, "\n".join(map(str, audit.findings))
