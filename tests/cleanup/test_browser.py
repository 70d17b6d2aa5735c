"""The cleanup pages in Debian's Chromium: confirm and delete a tag, bulk-select with the
select-all checkbox (the form="bulk-delete" wiring and static JS), and the retention preview.
Screenshots go to test-artifacts/screenshots/cleanup-*.png."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory

from registryui.catalog.models import Repository, Tag
from registryui.cleanup.models import RetentionPolicy
from tests.browser.support import TIMEOUT_MS, browser, screenshot  # noqa: F401
from tests.personas import make_personas

pytestmark = pytest.mark.browser


@pytest.fixture
def page_as_deleter(browser, live_server, world, transactional_db):  # noqa: F811
    world.image("one")
    world.image("two")
    world.image("three")
    world.push("one", "team-a/api:1.0")
    world.push("one", "team-a/api:stable")
    world.push("two", "team-a/api:2.0")
    world.push("three", "team-a/api:3.0")
    world.sync()
    personas = make_personas()
    client = Client()
    client.force_login(personas["a_deleter"].user)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "domain": live_server.url.split("//", 1)[1].split(":", 1)[0],
                "path": "/",
            }
        ]
    )
    page = context.new_page()
    yield page, world, personas
    context.close()


def test_confirm_and_delete_one_tag(page_as_deleter):
    page, world, _ = page_as_deleter
    page.goto("/r/team-a/api:1.0/-/delete")
    assert page.locator("code.sibling", has_text="stable").first.is_visible()
    screenshot(page, "cleanup-delete-tag-confirm")
    page.get_by_role("button", name="Delete tag").click()
    page.wait_for_selector("text=Deleted 1.0; kept stable.")
    screenshot(page, "cleanup-delete-tag-done")
    assert world.digest("team-a/api:1.0") is None
    assert world.digest("team-a/api:stable") == world.pushed["team-a/api:1.0"]


def test_select_all_collects_the_table_checkboxes_into_the_bulk_form(page_as_deleter):
    page, world, personas = page_as_deleter
    # The repository page belongs to the catalog; here its tags table is stood in for by the
    # partials it includes, rendered by Django and placed in a page of ours.
    request = RequestFactory().get("/")
    request.user = personas["a_deleter"].fresh_user()
    repository = Repository.objects.get(name="team-a/api")
    markup = render_to_string(
        "cleanup/_repository_actions.html", {"repository": repository}, request=request
    )
    for tag in Tag.objects.filter(repository=repository).select_related("repository"):
        markup += (
            "<p>"
            + render_to_string("cleanup/_bulk_checkbox.html", {"tag": tag}, request=request)
            + tag.name
            + "</p>"
        )
    page.goto("/retention/")
    page.evaluate(
        "html => { document.querySelector('main').innerHTML = html; }",
        re.sub(r"<script[^>]*></script>", "", markup),
    )
    page.add_script_tag(url="/static/cleanup/bulk-select.js")
    page.get_by_label("Select all tags on this page").check()
    assert page.locator('input[name="tag"]:checked').count() == 4
    page.get_by_label("Select 3.0").uncheck()
    assert not page.get_by_label("Select all tags on this page").is_checked()
    page.get_by_role("button", name="Delete selected tags").click()
    page.wait_for_selector("h1:has-text('Delete 3 tags of')")
    screenshot(page, "cleanup-bulk-confirm")
    page.get_by_role("button", name="Delete these tags").click()
    page.wait_for_selector("text=Done: 3 tags deleted")
    assert world.registry_tags("team-a/api") == ["3.0"]


def test_retention_preview(page_as_deleter):
    page, _, _ = page_as_deleter
    policy = RetentionPolicy.objects.create(
        name="keep-two",
        repository_pattern="team-a/*",
        keep_last=2,
        keep_regex="^stable$",
        enabled=True,
    )
    page.goto(f"/retention/{policy.pk}/")
    assert page.locator("tr.delete").count() >= 1
    screenshot(page, "cleanup-retention-preview")
