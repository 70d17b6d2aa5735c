"""The repository page's tags table and the tag actions of issue 14, as steps of the browser
audit's ``journey()`` (``tests/browser/test_audit.py``): the grouped and flat views, the
filter, "add tags" (added, then a move confirmed) and "copy to repository" (form,
confirmation, result). Each page is audited at the journey's width and theme."""

from __future__ import annotations

import re

SCRATCH = "team-a/scratch"


def tag_pages(audit) -> None:
    label = audit.label
    audit.visit("a_viewer", "/r/team-a/api?view=flat", "viewer-repository-flat")
    audit.visit("a_viewer", "/r/team-a/web?view=flat", "viewer-index-flat")
    audit.visit("a_viewer", "/r/team-a/api?q=1.&view=flat", "viewer-repository-filter")
    audit.visit("a_viewer", "/r/team-a/api?q=nothing-matches", "viewer-repository-no-match")
    audit.visit("a_viewer", "/r/team-a/api?view=grouped", "viewer-repository-grouped")
    audit.visit("a_viewer", "/search/?q=linux/arm64", "viewer-search-platform")

    audit.visit("a_deleter", f"/r/{SCRATCH}?view=flat&q=build", "deleter-repository-flat")
    audit.visit("a_deleter", f"/r/{SCRATCH}/-/bulk-delete?all=1&q=build", "select-all-confirm")
    audit.visit("a_deleter", f"/r/{SCRATCH}?view=grouped", "deleter-repository-grouped")

    # Add tags: two new ones, then one that points at another image, moved after confirming.
    page = audit.visit("a_deleter", f"/r/{SCRATCH}:keep/-/add-tags", "add-tags-form")
    page.get_by_label(re.compile("New tags")).fill(f"a-{label} b-{label} not/valid")
    with page.expect_navigation():
        page.get_by_role("button", name="Add tags").click()
    audit.check(page, "add-tags-result")
    page = audit.visit("a_deleter", f"/r/{SCRATCH}:build-62/-/add-tags", "add-tags-move-form")
    page.get_by_label(re.compile("New tags")).fill(f"a-{label}")
    with page.expect_navigation():
        page.get_by_role("button", name="Add tags").click()
    audit.check(page, "add-tags-move-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^Move")).click()
    audit.check(page, "add-tags-move-result")

    # Copy to repository: the form, the confirmation, the result.
    page = audit.visit("a_deleter", f"/r/{SCRATCH}:keep/-/copy", "copy-form")
    page.get_by_label("Repository").fill(f"team-a/copied-{label}")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^Review")).click()
    audit.check(page, "copy-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name="Copy", exact=True).click()
    audit.check(page, "copy-result")
