"""Pages rendered in Chromium under the production Content-Security-Policy log no violation.

The browser talks to gunicorn as a TLS-terminating proxy would (``X-Forwarded-Proto: https``
on every request), logs in through the form, walks the main pages and uses the htmx filter.
Violations are caught twice: the page's ``securitypolicyviolation`` events (recorded by an
init script, which CSP does not govern) and the console's "Refused to ..." messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS

from .support import BASE_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    sample: event.sample,
    source: event.sourceFile + ":" + event.lineNumber,
  });
});
"""

PAGES = [
    "/",
    "/?sort=name",
    "/search/?q=api",
    "/r/team-a/api",
    "/r/team-a/api:1.4",
    "/r/team-a/web:latest",
    "/status/",
    "/profile/",
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/user/add/",
    "/admin/auth/group/add/",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, production_server):
    context = browser.new_context(
        base_url=production_server.url, extra_http_headers={"X-Forwarded-Proto": "https"}
    )
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.console_messages_seen = []
    page.on(
        "console",
        lambda message: page.console_messages_seen.append(f"{message.type}: {message.text}"),
    )
    page.bad_responses = []
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and page.bad_responses.append((response.status, response.url))
        ),
    )
    yield page
    context.close()


def violations(page) -> list[dict]:
    return page.evaluate("window.__cspViolations || []")


def csp_console_messages(page) -> list[str]:
    return [
        m for m in page.console_messages_seen if "Content Security Policy" in m or "Refused to" in m
    ]


def log_in(page, production_server) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", production_server.admin[0])
    page.fill("input[name=password]", production_server.admin[1])
    with page.expect_navigation():
        page.locator("form:has(input[name=password]) [type=submit]").click()
    assert "/accounts/login/" not in page.url, page.content()[:2000]


def test_pages_log_no_csp_violation(page, production_server):
    log_in(page, production_server)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list] = {}
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        page.wait_for_load_state("networkidle")
        found = violations(page)
        if found:
            seen[path] = found
        name = path.strip("/").replace("/", "_").replace("?", "_").replace(":", "_") or "home"
        page.screenshot(path=str(SCREENSHOTS / f"deploy-csp-{name}.png"), full_page=True)
    assert seen == {}
    assert csp_console_messages(page) == []
    # Every stylesheet, script and htmx request of these pages loaded.
    assert page.bad_responses == []


def test_htmx_requests_run_under_the_csp(page, production_server):
    log_in(page, production_server)
    page.goto("/")
    htmx_loaded = page.evaluate("typeof window.htmx === 'object'")
    assert htmx_loaded, "htmx did not load"
    assert page.evaluate("htmx.config.allowEval") is False
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    field = page.locator("input[hx-get]").first
    assert field.count() == 1, "no htmx-driven field on the repository list"
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        field.fill("team-a")
    page.wait_for_load_state("networkidle")
    assert "team-a/api" in page.content()
    assert violations(page) == []
    assert csp_console_messages(page) == []
    assert page.bad_responses == []


def test_the_violation_listener_catches_a_violation(page, production_server):
    """The detector itself works: an inline script is refused and reported."""
    page.goto("/accounts/login/")
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true";
        document.body.appendChild(script);
    }"""
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__inlineRan === undefined")
    (violation,) = violations(page)
    assert violation["directive"].startswith("script-src")
    assert violation["blocked"] == "inline"
