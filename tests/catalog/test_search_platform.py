"""Search by platform (issue 14): ``arm64``, ``linux/arm64``, ``linux/arm64/v8`` and common
aliases list the tags whose image (or one of whose index's platforms) is built for it, among
the repositories the user may see only. The samples' ``team-a/web`` is an index of
linux/amd64 and linux/arm64/v8; every other sample is linux/amd64 alone."""

from __future__ import annotations

import re

import pytest

from registryui.browse.search import platform_matches, platform_query


def platform_hits(html: str) -> list[str]:
    section = html.split('id="results-platform"', 1)
    if len(section) < 2:
        return []
    body = section[1].split("</section>", 1)[0]
    return re.findall(r"<strong>([^<]+)</strong>", body)


@pytest.mark.parametrize("query", ["arm64", "linux/arm64", "linux/arm64/v8", "AARCH64"])
def test_an_arm64_search_finds_the_multi_platform_image(catalog, query):
    html = catalog.client("a_viewer").get("/search/", {"q": query}).content.decode()
    assert platform_hits(html) == ["team-a/web:2.0", "team-a/web:latest"]
    assert "Images for <code>" in html


def test_amd64_finds_every_visible_image_and_nothing_hidden(catalog):
    viewer = platform_hits(
        catalog.client("a_viewer").get("/search/", {"q": "amd64"}).content.decode()
    )
    assert viewer and all(
        hit.split(":")[0] in {"team-a/api", "team-a/web", "hello"} for hit in viewer
    )
    assert "team-a/web:2.0" in viewer and "hello:latest" in viewer
    admin = platform_hits(
        catalog.client("b_admin").get("/search/", {"q": "amd64"}).content.decode()
    )
    assert admin and not any(hit.startswith(("team-a/", "hello", "secret/")) for hit in admin)
    # Nothing of team-a/web's arm64 image is shown to who may not see team-a.
    html = catalog.client("b_admin").get("/search/", {"q": "linux/arm64"}).content.decode()
    assert platform_hits(html) == []
    assert "No image you may see is built for the platform “linux/arm64”" in html


def test_platform_words():
    assert platform_query("linux/ARM64/v8") == "linux/arm64/v8"
    assert platform_query("x86_64") == "amd64"
    assert platform_query("team-a/api") == ""
    assert platform_matches("arm64", "linux/amd64, linux/arm64/v8")
    assert platform_matches("linux/arm64", "linux/arm64/v8")
    assert not platform_matches("linux/arm", "linux/arm64/v8")
    assert not platform_matches("arm", "linux/arm64")
    assert platform_matches("arm", "linux/arm/v7")
