"""The pages of issue 14's tags work alone through the browser audit (``tag_pages``), at
1280 and 390 px, light and dark: a quick run while working on them, with screenshots in
``test-artifacts/screenshots/audit-*``. The full journey (``test_audit.py``) includes them."""

from __future__ import annotations

import pytest

from tests.personas import make_personas

from .support import browser  # noqa: F401
from .tag_pages import tag_pages
from .test_audit import Audit, audit_registry, audit_site  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_tag_pages_pass_the_audit(audit_site, browser, width, scheme):  # noqa: F811
    url, _ = audit_site
    audit = Audit(url, browser, width, scheme, make_personas())
    try:
        audit.personas["public"].apply_site_settings()
        tag_pages(audit)
    finally:
        audit.close()
    assert len(audit.pages) >= 17, audit.pages
    assert not audit.findings, "\n".join(map(str, audit.findings))
