"""Site-wide pieces of issue 15: ``/favicon.ico`` answers (no 404 logged for every admin
page), and "Retention" is in the navigation only for users the retention pages would not
refuse (the resolver's "may delete somewhere")."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.templatetags.static import static

from tests.personas import personas  # noqa: F401

pytestmark = pytest.mark.django_db

RETENTION_LINK = '<a href="/retention/"'


def test_favicon_ico_redirects_to_the_vendored_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("favicon.ico")
    icon = Path(settings.BASE_DIR) / "static" / "favicon.ico"
    # An ICO header (reserved 0, type 1, one image) around a PNG image.
    assert icon.read_bytes()[:6] == b"\x00\x00\x01\x00\x01\x00"
    assert b"\x89PNG" in icon.read_bytes()


@pytest.mark.parametrize(
    ("persona", "shown"),
    [
        ("no_team", False),
        ("a_viewer", False),
        ("b_admin", True),  # admin on team-b/* includes delete
        ("a_deleter", True),
        ("superuser", True),
    ],
)
def test_retention_is_in_the_navigation_only_for_those_who_may_delete(personas, persona, shown):  # noqa: F811
    client = personas[persona].client()
    page = client.get("/profile/").content.decode()
    assert (RETENTION_LINK in page) is shown
    # The link and the page agree: whoever is shown the link may open it, nobody else may.
    assert (client.get("/retention/").status_code == 200) is shown
