"""Search by what is attached: signed:yes/no, has:sbom, a package inside an SBOM."""

from __future__ import annotations

import re

import pytest

from registryui.browse.search import search
from tests.attach.support import push_and_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushed(use_registry):
    return push_and_sync()


def _found(persona, query):
    results = search(persona.user, query).attached
    return sorted(f"{t.repository.name}:{t.name}" for t in results.tags), results


def test_signed_filters(pushed, personas):
    admin, viewer = personas["superuser"], personas["a_viewer"]
    assert _found(admin, "signed:yes")[0] == ["team-a/signed:1.0", "team-b/app:1"]
    assert _found(viewer, "signed:yes")[0] == ["team-a/signed:1.0"]
    unsigned = _found(viewer, "signed:no")[0]
    assert "team-a/signed:2.0" in unsigned and "team-a/base:bookworm" in unsigned
    assert "team-a/signed:1.0" not in unsigned
    assert not any(name.startswith("team-b/") or ".sig" in name for name in unsigned)
    assert _found(viewer, "has:sbom")[0] == ["team-a/signed:1.0"]
    assert _found(viewer, "has:provenance")[0] == ["team-a/signed:1.0"]


def test_a_package_name_finds_images_whose_sbom_lists_it(pushed, personas):
    results = search(personas["a_viewer"].user, "openssl").attached
    assert [(h.tag.repository.name, h.tag.name, h.package) for h in results.packages] == [
        ("team-a/signed", "1.0", "openssl")
    ]
    assert search(personas["a_viewer"].user, "no-such-package").attached.packages == []


def test_search_page_shows_them(pushed, personas):
    client = personas["a_viewer"].client()
    page = client.get("/search/", {"q": "signed:no"}).content.decode()
    assert "Unsigned images" in page and "team-a/signed:2.0" in page
    assert "team-a/signed:1.0<" not in page
    page = client.get("/search/", {"q": "openssl"}, headers={"HX-Request": "true"}).content
    page = page.decode()
    assert "<html" not in page and "Images whose SBOM lists it" in page
    assert re.search(r"team-a/signed:1\.0</strong>", page)
