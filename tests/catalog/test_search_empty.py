"""An empty search says what was searched and what forms work, with a reason for the
queries people try first (issue 15): five hex characters, a platform, capitals."""

from __future__ import annotations

import pytest

from registryui.catalog.templatetags.catalog import search_hints
from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db


def empty_page(personas, query: str) -> str:  # noqa: F811
    response = personas["superuser"].client().get("/search/", {"q": query})
    assert response.status_code == 200
    return response.content.decode()


def test_five_hex_characters_are_too_few_for_a_digest(personas):  # noqa: F811
    page = empty_page(personas, "38586")
    assert "Nothing found for “38586”" in page
    assert "“38586” has 5 hex characters: a digest is searched from 6 on" in page
    assert "Searched: repository names and descriptions containing it" in page
    assert "Forms that work" in page


def test_a_platform_no_image_is_built_for_is_explained(personas):  # noqa: F811
    page = empty_page(personas, "arm64")
    assert "No image you may see is built for the platform “arm64”" in page
    assert "a digest is searched from" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("38586", ["5 hex characters"]),
        ("sha256:3858", ["4 hex characters"]),
        ("385867", []),  # six: a digest search, nothing to explain
        ("linux/arm64/v8", ["built for the platform"]),
        ("amd64", ["built for the platform"]),
        ("Team-A", ["lowercase"]),
        ("team-a/api", []),
    ],
)
def test_search_hints(query, expected):
    hints = search_hints(query)
    assert len(hints) == len(expected)
    for hint, words in zip(hints, expected, strict=True):
        assert words in hint
