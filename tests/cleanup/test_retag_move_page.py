"""The move-tag confirmation shows both images with what to judge them by (issue 15 item 4)."""

from __future__ import annotations

import re


def side(html: str, which: str) -> str:
    return html.split(f'<section class="move-side {which}"', 1)[1].split("</section>", 1)[0]


def test_the_move_confirmation_compares_both_images(world, personas):
    world.image("old", size=5000, created="2025-03-04T05:06:07Z")
    world.index("new", [("linux", "amd64", None), ("linux", "arm64", "v8")], size=3000)
    old = world.push("old", "team-a/app:stable")
    for tag in ("build-10", "build-2", "release"):
        world.push("old", f"team-a/app:{tag}")
    new = world.push("new", "team-a/app:build-11", all_platforms=True)
    world.sync()

    response = (
        personas["a_deleter"].client().post("/r/team-a/app:build-11/-/retag", {"new_tag": "stable"})
    )
    html = response.content.decode()
    assert response.status_code == 200

    now, then = side(html, "old"), side(html, "new")
    # Each digest: shortened on one line, linked to its image, the full one a click away.
    assert f'<a href="/r/team-a/app@{old}" title="{old}"><code>{old[7:23]}</code></a>' in now
    assert f'<code class="old-digest">{old}</code>' in now
    assert f'<code class="new-digest">{new}</code>' in then
    # Created, size and platforms of each.
    assert '<time datetime="2025-03-04T05:06:07+00:00"' in now
    assert re.search(r"<dt>Size</dt><dd>[\d.]+ KiB</dd>", now)
    assert '<span class="platform">linux/amd64</span>' in now
    assert "linux/arm64/v8" in then and "linux/arm64/v8" not in now
    # Their other tags here, in natural order, the moving tag left out.
    assert re.findall(r"<li><code>([^<]+)</code></li>", now) == ["build-2", "build-10", "release"]
    assert re.findall(r"<li><code>([^<]+)</code></li>", then) == ["build-11"]
    assert "left untagged" not in now + then
    assert "stable" not in re.findall(r"<li><code>([^<]+)</code></li>", now + then)


def test_an_image_only_tagged_by_the_moving_tag_says_it_is_left_untagged(world, personas):
    world.image("one")
    world.image("two")
    world.push("one", "team-a/app:latest")
    world.push("two", "team-a/app:next")
    world.sync()
    html = (
        personas["a_deleter"]
        .client()
        .post("/r/team-a/app:next/-/retag", {"new_tag": "latest"})
        .content.decode()
    )
    assert "none: the image is left untagged" in side(html, "old")
