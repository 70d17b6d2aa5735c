"""A repository's overview and stars, against a real registry whose images carry OCI labels."""

from __future__ import annotations

import html as htmllib
import re
import shutil

import pytest

from registryui.catalog.models import Repository
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.overview.models import RepositoryOverview, Star
from registryui.sync.syncer import Syncer

README = (
    "# Weather API\n\nRun it with `docker run`.\n\n<script>alert('readme')</script>\n\n"
    "[bad](javascript:alert(1)) ![logo](data:image/png;base64,AAAA)\n"
)


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def overview_section(html: str) -> str:
    return html.split('<section class="repo-overview"', 1)[1].split("</section>", 1)[0]


def names_on(html: str) -> list[str]:
    return re.findall(r'<a href="/r/([^"]+)">\1</a>', html)


def sync_again():
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    return run


def test_without_an_overview_the_image_labels_are_shown(synced):
    client = synced["superuser"].client()
    api = overview_section(page(client, "/r/team-a/api"))
    # Registry text is escaped, a label URL is a link only when it is http(s).
    assert "Forecasts by postcode &lt;b&gt;fast&lt;/b&gt;" in api
    assert '<a href="https://git.example.com/team-a/api" rel="nofollow noopener noreferrer">' in api
    assert "<dt>Documentation</dt><dd>javascript:alert(1)</dd>" in api
    assert 'href="javascript' not in api
    assert "<dt>Licenses</dt><dd>Apache-2.0</dd>" in api
    assert 'From the labels of <a href="/r/team-a/api:1.0"><code>1.0</code></a>' in api
    # An index: the labels of its platform images.
    web = overview_section(page(client, "/r/team-a/web"))
    assert "The team-a web front end" in web and "<dd>MIT</dd>" in web
    # No labels at all.
    assert "No overview yet" in overview_section(page(client, "/r/team-b/worker"))


def test_a_pusher_writes_an_overview_that_replaces_the_labels_rendered_safely(synced):
    client = synced["a_deleter"].client(enforce_csrf_checks=False)
    form = page(client, "/r/team-a/api/-/overview")
    assert 'name="description"' in form and "Forecasts by postcode" in form
    response = client.post(
        "/r/team-a/api/-/overview",
        {"description": "  Weather   forecasts\nby postcode ", "readme": README},
    )
    assert response.status_code == 302 and response["Location"] == "/r/team-a/api"
    row = RepositoryOverview.objects.get(name="team-a/api")
    assert row.description == "Weather forecasts by postcode"
    assert row.updated_by == synced["a_deleter"].user

    section = overview_section(page(client, "/r/team-a/api"))
    assert '<p class="repo-description">Weather forecasts by postcode</p>' in section
    assert "<h3>Weather API</h3>" in section
    assert "<code>docker run</code>" in section
    assert "<script" not in section and "&lt;script&gt;" in section
    assert 'href="javascript' not in section and "data:image" not in section
    assert "From the labels" not in section and "by a-deleter" in section
    # The list shows the description under the name.
    listing = page(synced["a_viewer"].client(), "/")
    row_html = listing.split('href="/r/team-a/api"', 1)[1].split("</tr>", 1)[0]
    assert '<div class="sub repo-description">Weather forecasts by postcode</div>' in row_html

    entry = AuditEntry.objects.get(action=AuditEntry.Action.OVERVIEW_CHANGED)
    assert entry.repository == "team-a/api" and entry.actor == synced["a_deleter"].user
    assert entry.details["description"] == "Weather forecasts by postcode"
    assert entry.details["description_before"] == "" and entry.details["readme_changed"] is True


def test_a_bad_edit_is_refused_with_the_form_and_nothing_saved(synced):
    client = synced["a_deleter"].client()
    response = client.post("/r/team-a/api/-/overview", {"description": "x" * 201, "readme": ""})
    assert response.status_code == 400
    assert "Ensure this value has at most 200 characters" in response.content.decode()
    assert not RepositoryOverview.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.OVERVIEW_CHANGED).exists()
    response = client.get("/r/team-a/api:1.0/-/overview")
    assert response.status_code == 400


EDIT = {
    # persona: (status on team-a/api, status on team-b/worker)
    "anonymous": (302, 302),
    "public": (302, 302),
    "no_team": (404, 404),
    "a_viewer": (403, 404),
    "a_deleter": (200, 404),
    "b_admin": (404, 200),
    "superuser": (200, 200),
}


@pytest.mark.parametrize("persona", list(EDIT))
def test_who_may_edit_follows_the_resolver(synced, persona):
    client = synced[persona].client()
    for name, expected in zip(("team-a/api", "team-b/worker"), EDIT[persona], strict=True):
        url = f"/r/{name}/-/overview"
        get = client.get(url)
        assert get.status_code == expected, (name, get.status_code)
        post = client.post(url, {"description": f"by {persona}", "readme": ""})
        assert post.status_code == (302 if expected == 200 else expected), name
        if expected == 302:
            assert post["Location"].startswith("/accounts/login/")
        saved = RepositoryOverview.objects.filter(name=name, description=f"by {persona}")
        assert saved.exists() == (expected == 200)
        if expected in (200, 403):
            # The page offers the edit button exactly to who may use it.
            shown = "/-/overview" in page(client, f"/r/{name}")
            assert shown == (expected == 200)


def test_stars_come_first_and_have_their_own_filter(synced):
    viewer = synced["a_viewer"]
    client = viewer.client()
    assert names_on(page(client, "/")) == ["hello", "team-a/api", "team-a/web"]
    response = client.post("/r/team-a/web/-/star", {"star": "on", "next": "/?sort=name"})
    assert response.status_code == 302 and response["Location"] == "/?sort=name"
    listing = page(client, "/")
    assert names_on(listing) == ["team-a/web", "hello", "team-a/api"]
    assert 'class="star-mark"' in listing.split('href="/r/team-a/web"', 1)[0].rsplit("<tr>", 1)[1]
    starred = page(client, "/?starred=1")
    assert names_on(starred) == ["team-a/web"] and "starred by you" in starred
    # Also first under another sort, and per user: the deleter's list is unchanged.
    assert names_on(page(client, "/?sort=-name")) == ["team-a/web", "team-a/api", "hello"]
    assert names_on(page(synced["a_deleter"].client(), "/")) == [
        "hello",
        "team-a/api",
        "team-a/web",
    ]
    # The repository page shows the pressed state; unstarring restores the order.
    assert 'aria-pressed="true"' in page(client, "/r/team-a/web")
    client.post("/r/team-a/web/-/star", {"star": "off"})
    assert names_on(page(client, "/")) == ["hello", "team-a/api", "team-a/web"]
    actions = list(
        AuditEntry.objects.filter(repository="team-a/web")
        .order_by("id")
        .values_list("action", "actor__username")
    )
    assert actions == [("starred", "a-viewer"), ("unstarred", "a-viewer")]


def test_star_refusals(synced):
    viewer = synced["a_viewer"].client()
    assert viewer.post("/r/team-b/worker/-/star", {"star": "on"}).status_code == 404
    assert viewer.post("/r/team-a/api/-/star", {"star": "yes"}).status_code == 400
    assert viewer.get("/r/team-a/api/-/star").status_code == 405
    # Only a path on this site is followed after starring.
    response = viewer.post("/r/team-a/api/-/star", {"star": "on", "next": "https://evil.example/"})
    assert response["Location"] == "/r/team-a/api"
    anonymous = synced["public"].client()
    response = anonymous.post("/r/hello/-/star", {"star": "on"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert list(Star.objects.values_list("user__username", "name")) == [("a-viewer", "team-a/api")]


def test_search_finds_descriptions_only_of_visible_repositories(synced):
    RepositoryOverview.objects.create(
        name="team-a/api", description="Weather forecasts by postcode"
    )
    RepositoryOverview.objects.create(name="team-b/worker", description="Secret sauce queue worker")
    viewer = synced["a_viewer"].client()
    html = page(viewer, "/search/?q=postcode")
    assert '<a href="/r/team-a/api"><strong>team-a/api</strong></a>' in html
    assert "Weather forecasts by postcode" in html
    # A multi-word query works too; a hidden repository's description finds nothing.
    assert "team-a/api" in page(viewer, "/search/?q=forecasts+by")
    hidden = page(viewer, "/search/?q=sauce")
    assert "team-b/worker" not in hidden and "Secret sauce" not in hidden
    assert "Nothing found" in hidden
    assert "team-b/worker" in page(synced["b_admin"].client(), "/search/?q=sauce")


def test_overview_and_stars_survive_sync_removal_and_repush(synced, labelled):
    admin = synced["b_admin"]
    client = admin.client()
    client.post("/r/team-b/worker/-/overview", {"description": "Queue worker", "readme": "# Hi"})
    client.post("/r/team-b/worker/-/star", {"star": "on"})
    sync_again()
    assert "Queue worker" in overview_section(page(client, "/r/team-b/worker"))

    # Removing a repository on 2.8 is removing its directory from storage.
    storage = labelled.process.storage / "docker/registry/v2/repositories/team-b/worker"
    shutil.rmtree(storage)
    try:
        sync_again()
        assert not Repository.objects.filter(name="team-b/worker").exists()
        assert RepositoryOverview.objects.filter(name="team-b/worker").exists()
        assert names_on(page(client, "/")) == []
        assert "Queue worker" not in page(client, "/search/?q=queue")
        assert client.get("/r/team-b/worker").status_code == 404
    finally:
        labelled.push("plain", "team-b/worker:v1")
    sync_again()
    assert names_on(page(client, "/")) == ["team-b/worker"]
    section = overview_section(page(client, "/r/team-b/worker"))
    assert "Queue worker" in section and "<h3>Hi</h3>" in section
    assert 'aria-pressed="true"' in section
    assert htmllib.unescape("★") in page(client, "/")
