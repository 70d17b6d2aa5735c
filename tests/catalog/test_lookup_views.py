"""References in URLs: the Distribution grammar decides 400 (with the grammar shown), a valid
but unknown or hidden reference is a 404 with a search link; never a 500."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from registryui.lib.reference import GRAMMAR

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/r/Team-A/api", "'Team-A/api' is not a valid repository name."),
        ("/r/team-a//api", "'team-a//api' is not a valid repository name."),
        ("/r/team-a/api-", "'team-a/api-' is not a valid repository name."),
        ("/r/team-a/api:-x", "'-x' is not a valid tag."),
        ("/r/team-a/api:" + "x" * 129, "is not a valid tag."),
        ("/r/team-a/api@sha256:abc", "'sha256:abc' is not a valid digest"),
        ("/r/team-a/api@md5:" + "a" * 32, "is not a valid digest"),
        ("/r/team-a/api:1.4@" + DIGEST, "Use either :tag or @digest in the URL, not both."),
        ("/r/registry.example.com:5000/team-a/api", "is not a valid repository name."),
        ("/r/" + "a" * 256, "is not a valid repository name."),
    ],
)
def test_a_malformed_reference_is_a_400_page_showing_the_grammar(catalog, path, message):
    response = catalog.client().get(path)
    page = html_lib.unescape(response.content.decode())
    assert response.status_code == 400
    assert "<h1>Bad request</h1>" in page
    assert message in page
    assert GRAMMAR in page


def test_a_long_invalid_name_is_refused_at_once(catalog):
    """A pattern that backtracks (nested repeats in the name grammar) would take minutes on
    this input; lib.reference's answers at once."""
    response = catalog.client().get("/r/" + "a" * 200 + "!")
    assert response.status_code == 400
    assert "is not a valid repository name." in response.content.decode()


@pytest.mark.parametrize(
    ("path", "message", "suggestion"),
    [
        ("/r/team-a/nothing", "No such repository.", "team-a/nothing"),
        ("/r/team-a/api:nothing", "team-a/api has no tag nothing.", "team-a/api"),
        (f"/r/team-a/api@{DIGEST}", f"team-a/api has no manifest {DIGEST}.", "team-a/api"),
    ],
)
def test_an_unknown_reference_is_a_404_page_with_a_search_link(catalog, path, message, suggestion):
    response = catalog.client().get(path)
    page = html_lib.unescape(response.content.decode())
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in page
    assert message in page
    assert f'<a href="/search/?q={suggestion}">Search for “{suggestion}”</a>' in page


def test_a_hidden_reference_is_the_same_404(catalog):
    client = catalog.client("a_viewer")
    for path in ("/r/secret/vault", "/r/secret/vault:latest", f"/r/secret/vault@{DIGEST}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "No such repository." in response.content.decode()


def test_an_unknown_page_is_a_404_with_a_plain_search_link(catalog):
    response = catalog.client().get("/no/such/page")
    page = response.content.decode()
    assert response.status_code == 404
    assert "There is no page at this address." in page
    assert '<a href="/search/">Search the registry</a>' in page
    # Django's resolver details never reach the page.
    assert "tried" not in page


def test_references_work_for_nested_names_and_every_form(catalog):
    client = catalog.client()
    builder = catalog.digest("platform/tools/builder:2026.11")
    for path, heading in (
        ("/r/platform/tools/builder", "platform/tools/builder"),
        ("/r/platform/tools/builder:2026.11", "platform/tools/builder:2026.11"),
        (f"/r/platform/tools/builder@{builder}", f"platform/tools/builder@{builder}"),
        ("/r/hello", "hello"),
        ("/r/hello:latest", "hello:latest"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        [h1] = re.findall(r'<h1 class="reference">(.*?)</h1>', response.content.decode())
        assert re.sub(r"<[^>]+>", "", h1) == heading, path
