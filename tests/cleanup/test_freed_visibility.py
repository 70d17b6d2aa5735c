"""Issue 11, leak 3: the bytes a delete frees must not tell who cannot see every repository
that an image in a hidden repository shares a blob ("Shared, kept: 1 blob ... other images
use" appeared as soon as a hidden image started using the layer). Those users get an upper
bound counted over what they can see; users who see everything keep the exact figure."""

from __future__ import annotations

import html as html_lib
import re

from registryui.cleanup.models import RetentionPolicy


def freed_figures(html: str) -> str:
    """The text of the ``<dl class="facts freed">`` list (freed bytes and shared blobs)."""
    section = html.split('<dl class="facts freed">', 1)[1].split("</dl>", 1)[0]
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", section).split()))


def test_a_hidden_image_sharing_the_blobs_changes_nothing_for_who_cannot_see_it(world, personas):
    world.image("app", size=5000)
    world.push("app", "team-a/app:1")
    world.image("other", size=3000)
    world.push("other", "team-a/app:2")  # keeps the repository alive after the delete
    world.sync()
    RetentionPolicy.objects.create(
        name="all-of-1",
        repository_pattern="team-a/*",
        keep_last=0,
        older_than_days=0,
        keep_regex="2",
        enabled=True,
    )
    policy = RetentionPolicy.objects.get()
    pages = ("/r/team-a/app:1/-/delete-image", f"/retention/{policy.pk}/")
    deleter, root = personas["a_deleter"].client(), personas["superuser"].client()
    before = {page: freed_figures(deleter.get(page).content.decode()) for page in pages}
    exact_before = freed_figures(root.get(pages[0]).content.decode())

    # The same image, pushed into a repository the deleter cannot see, now holds every blob.
    world.push("app", "secret/vault:copy")
    world.sync()

    for page in pages:
        shown = freed_figures(deleter.get(page).content.decode())
        assert shown == before[page], page
        assert "up to" in shown and "blobs may be shared with images you cannot see" in shown
        assert "Shared, kept" not in shown
    # Who sees everything keeps the exact figure: nothing is freed any more.
    exact_after = freed_figures(root.get(pages[0]).content.decode())
    assert "up to" not in exact_before and "Shared, kept" not in exact_before
    assert exact_after != exact_before
    assert "Freed after garbage-collect 0 B" in exact_after
    assert "Shared, kept 3 blobs" in exact_after


def test_the_api_reports_freed_bytes_as_the_pages_do(world, personas):
    """The API's dry run and its delete answer the same bound for who cannot see everything."""
    world.image("app", size=5000)
    digest = world.push("app", "team-a/app:1")
    world.image("other", size=3000)
    world.push("other", "team-a/app:2")
    world.sync()
    deleter, root = personas["a_deleter"].client(), personas["superuser"].client()
    url = "/api/v1/repositories/team-a/app/-/bulk-delete"

    def freed(client, dry_run: bool = True) -> int:
        body = {"tags": [{"tag": "1", "digest": digest}], "dry_run": dry_run}
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 200, response.content
        return response.json()["freed_bytes"]

    before = freed(deleter)
    world.push("app", "secret/vault:copy")  # now every blob is also used where a_deleter is blind
    world.sync()
    assert freed(root) == 0  # exact: nothing would be freed any more
    assert freed(deleter) == before > 0  # the bound: unchanged by what is hidden
    assert freed(deleter, dry_run=False) == before
