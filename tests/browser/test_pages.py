"""The browse pages in a real browser: log in, filter as you type, sort, open a tag, copy the
pull command, "/" to search, dark mode, and the same pages without JavaScript."""

from __future__ import annotations

import re

import pytest

from tests.personas import PASSWORD

from .support import TIMEOUT_MS, screenshot

pytestmark = pytest.mark.browser

PULL_14 = "docker pull registry.example.com/team-a/api:1.4"


def repository_names(page) -> list[str]:
    return page.locator("table.repositories tbody th[scope=row] a").all_inner_texts()


def tag_names(page) -> list[str]:
    return page.locator("table.tags tbody th.tag-name a").all_inner_texts()


def test_log_in_and_filter_the_repositories_by_typing(site):
    context = site.context()
    page = context.new_page()
    page.goto("/")
    assert "/accounts/login/" in page.url
    screenshot(page, "login-light")
    page.get_by_label("Username").fill("a-viewer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
    assert repository_names(page) == ["hello", "team-a/api", "team-a/web"]
    screenshot(page, "repositories-light")

    page.get_by_label("Filter by name").press_sequentially("web", delay=30)
    page.wait_for_url(re.compile(r"[?&]q=web"))
    page.wait_for_function(
        "() => document.querySelectorAll('table.repositories tbody tr').length === 1"
    )
    assert repository_names(page) == ["team-a/web"]
    assert page.locator("#repository-count").inner_text().startswith("1 repository matches")
    # The filter box kept the focus while the list changed under it.
    assert page.evaluate("document.activeElement.id") == "filter-q"
    screenshot(page, "repositories-filtered-light")

    # The URL can be shared, and Back brings the whole list back.
    page.go_back()
    page.wait_for_function(
        "() => document.querySelectorAll('table.repositories tbody tr').length === 3"
    )
    assert repository_names(page) == ["hello", "team-a/api", "team-a/web"]
    context.close()


def test_the_namespace_filter_applies_on_change(site):
    context = site.context(persona="superuser")
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Namespace").select_option("team-b")
    page.wait_for_url(re.compile(r"namespace=team-b"))
    page.wait_for_function(
        "() => document.querySelectorAll('table.repositories tbody tr').length === 1"
    )
    assert repository_names(page) == ["team-b/worker"]
    context.close()


def test_sort_the_tags_table(site):
    context = site.context(persona="a_viewer")
    page = context.new_page()
    page.goto("/r/team-a/api")
    # Newest first by default: 1.5, latest and stable are one image, grouped, then 1.4.
    assert tag_names(page) == ["1.5", "latest", "stable", "1.4"]
    assert page.locator("tbody.image.shared").count() == 1
    assert "3 tags on this image" in page.locator("tbody.image.shared").inner_text()
    screenshot(page, "repository-light")

    page.get_by_role("link", name=re.compile(r"^Tag")).click()
    page.wait_for_url(re.compile(r"sort=tag"))
    page.wait_for_function(
        "() => document.querySelector('table.tags th[aria-sort=ascending]') !== null"
    )
    # By name, with each image's tags kept together where its first tag sorts.
    assert tag_names(page) == ["1.4", "1.5", "latest", "stable"]

    page.get_by_role("link", name=re.compile(r"^Tag")).click()
    page.wait_for_url(re.compile(r"sort=-tag"))
    page.wait_for_function(
        "() => document.querySelector('table.tags th[aria-sort=descending]') !== null"
    )
    assert tag_names(page) == ["stable", "latest", "1.5", "1.4"]
    context.close()


def test_open_a_tag_and_copy_the_pull_command(site):
    context = site.context(persona="a_viewer")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.goto("/r/team-a/api")
    page.get_by_role("link", name="1.4", exact=True).click()
    page.wait_for_url(re.compile(r"/r/team-a/api:1\.4$"))
    assert page.locator("h1").inner_text() == "team-a/api:1.4"
    assert page.locator("#manifest-digest").inner_text() == site.samples.digests["team-a/api:1.4"]
    assert page.locator("#pull-tag").inner_text() == PULL_14

    page.get_by_role("button", name="Copy the pull by tag command").click()
    page.wait_for_function("() => document.querySelector('.copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == PULL_14
    screenshot(page, "tag-light")
    context.close()


def test_copy_from_the_tags_table_is_said_in_the_pages_one_status_region(site):
    """The table's rows carry no status element of their own (two per row were a tenth of
    the page's elements): the page's one live region says "Copied", after an htmx swap too."""
    context = site.context(persona="a_viewer")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.goto("/r/team-a/api")
    assert page.locator("table.tags .copy-status").count() == 0
    status = page.locator("#copy-status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    assert status.inner_text() == ""

    page.get_by_role("button", name="Copy the pull command of 1.4").click()
    page.wait_for_function("() => document.getElementById('copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == PULL_14
    assert page.get_by_role("button", name="Copy the pull command of 1.4").inner_text() == "Copied"

    # Sorted by htmx: the new rows' buttons report to the same single region.
    page.get_by_role("link", name=re.compile(r"^Tag")).click()
    page.wait_for_function(
        "() => document.querySelector('table.tags th[aria-sort=ascending]') !== null"
    )
    page.evaluate("document.getElementById('copy-status').textContent = ''")
    digest = site.samples.digests["team-a/api:1.4"]
    page.get_by_role("button", name=f"Copy the digest {digest}").first.click()
    page.wait_for_function("() => document.getElementById('copy-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == digest
    assert page.locator("#copy-status").count() == 1
    context.close()


def test_slash_focuses_the_search_and_a_full_reference_goes_straight_to_it(site):
    context = site.context(persona="superuser")
    page = context.new_page()
    page.goto("/r/team-a/web:2.0")
    screenshot(page, "index-light")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "site-search"
    digest = site.samples.digests["team-a/web:2.0"]
    page.keyboard.type(f"registry.example.com/team-a/web@{digest}")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/r/team-a/web@{digest}$"))
    assert "Multi-platform index" in page.locator("dl.facts").first.inner_text()
    context.close()


def test_search_as_you_type(site):
    context = site.context(persona="superuser")
    page = context.new_page()
    page.goto("/search/")
    field = page.get_by_label("Repository, tag, digest, label value or full reference")
    field.press_sequentially("https://git.example.com/team-a", delay=10)
    page.wait_for_url(re.compile(r"q=https"))
    page.wait_for_selector("#results-labels")
    labels = page.locator("section.results", has=page.locator("#results-labels")).inner_text()
    assert "team-a/api:1.4" in labels
    assert "team-a/api:1.5, latest, stable" in labels
    screenshot(page, "search-light")
    context.close()


PAGES = {
    "repositories": "/",
    "repository": "/r/team-a/api",
    "tag": "/r/team-a/api:1.4",
    "index": "/r/team-a/web:2.0",
    "search": "/search/?q=team",
    "not-found": "/r/team-a/api:9.9",
    "bad-request": "/r/Team-A/api",
}


def _luminance(rgb: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_the_pages_in_dark_mode(site):
    context = site.context(color_scheme="dark", persona="superuser")
    page = context.new_page()
    for name, path in PAGES.items():
        page.goto(path)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        text = page.evaluate("getComputedStyle(document.body).color")
        assert _luminance(background) < 60, (name, background)
        assert _luminance(text) > 180, (name, text)
        screenshot(page, f"{name}-dark")
    context.close()
    anonymous = site.context(color_scheme="dark")
    page = anonymous.new_page()
    page.goto("/accounts/login/")
    screenshot(page, "login-dark")
    anonymous.close()


def test_the_light_pages_are_light(site):
    context = site.context(persona="superuser")
    page = context.new_page()
    for name in ("search", "not-found", "bad-request"):
        page.goto(PAGES[name])
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert _luminance(background) > 200, (name, background)
        screenshot(page, f"{name}-light")
    context.close()


def test_the_pages_work_without_javascript(site):
    context = site.context(javascript=False, persona="a_viewer")
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Filter by name").fill("api")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"q=api"))
    assert repository_names(page) == ["team-a/api"]

    page.get_by_role("link", name="team-a/api").click()
    page.wait_for_url(re.compile(r"/r/team-a/api$"))
    page.get_by_role("link", name=re.compile(r"^Tag")).click()
    page.wait_for_url(re.compile(r"sort=tag"))
    assert tag_names(page) == ["1.4", "1.5", "latest", "stable"]

    page.get_by_role("link", name="1.4", exact=True).click()
    page.wait_for_url(re.compile(r"/r/team-a/api:1\.4$"))
    # No copy button without JavaScript; the command is there to select.
    assert not page.get_by_role("button", name="Copy the pull by tag command").is_visible()
    assert page.locator("#pull-tag").inner_text() == PULL_14
    screenshot(page, "tag-no-javascript")

    # The header search is a plain form too.
    page.get_by_label("Search repositories, tags, digests and labels").fill("team-a/api:1.5")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"/r/team-a/api:1\.5$"), timeout=TIMEOUT_MS)
    context.close()
