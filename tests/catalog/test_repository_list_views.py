"""The repositories page ``/``: content, permissions, sort, namespace filter, the htmx
fragment, pagination, bad parameters and a constant number of queries."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from registryui.catalog.models import Manifest, Repository, SyncRun, Tag


def names_on(html: str) -> list[str]:
    """Repository names in the table, in order."""
    return re.findall(r'<th scope="row"><a href="/r/([^"]+)">', html)


def test_it_lists_every_synced_repository_with_tags_size_and_dates(catalog):
    response = catalog.client("superuser").get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert names_on(html) == [
        "hello",
        "platform/tools/builder",
        "secret/vault",
        "team-a/api",
        "team-a/web",
        "team-b/worker",
    ]
    api = Repository.objects.get(name="team-a/api")
    assert api.tag_count == 4
    row = html.split('href="/r/team-a/api"', 1)[1].split("</tr>", 1)[0]
    assert "<td>team-a</td>" in row
    assert '<td class="num">4</td>' in row
    # Binary units, and the absolute date on hover of a relative one.
    assert re.search(r'<td class="num">\d+(\.\d+)? (B|KiB)</td>', row)
    assert re.search(
        r'<time datetime="2026-11-01T10:00:00\+00:00" title="2026-11-01 10:00:00 UTC">', row
    )
    assert "6 repositories" in html


def test_it_shows_only_what_the_resolver_lets_each_persona_see(catalog):
    seen = {
        persona: names_on(catalog.client(persona).get("/").content.decode())
        for persona in ("a_viewer", "b_admin", "no_team")
    }
    assert seen["a_viewer"] == ["hello", "team-a/api", "team-a/web"]
    assert seen["b_admin"] == ["platform/tools/builder", "team-b/worker"]
    assert seen["no_team"] == []


def test_the_namespace_choices_are_narrowed_too(catalog):
    html = catalog.client("a_viewer").get("/").content.decode()
    options = re.findall(r'<option value="([^"]*)"', html)
    assert options == ["", "-", "team-a"]


def test_anonymous_visitors_go_to_the_login_page(catalog):
    response = catalog.client("anonymous").get("/?sort=-size")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/%3Fsort%3D-size"


def test_public_visitors_see_the_public_repositories_when_the_site_allows_it(catalog):
    response = catalog.client("public").get("/")
    assert response.status_code == 200
    assert names_on(response.content.decode()) == ["hello"]


@pytest.mark.parametrize(
    ("sort", "expected_first"),
    [
        ("name", "hello"),
        ("-name", "team-b/worker"),
        ("-tags", "team-a/api"),  # 4 tags
        ("-updated", "platform/tools/builder"),  # built 2026-11-25
        ("updated", "hello"),  # built 2026-01-02
    ],
)
def test_it_sorts(catalog, sort, expected_first):
    html = catalog.client().get("/", {"sort": sort}).content.decode()
    assert names_on(html)[0] == expected_first


def test_it_sorts_by_size(catalog):
    html = catalog.client().get("/", {"sort": "-size"}).content.decode()
    sizes = dict(Repository.objects.values_list("name", "size"))
    shown = names_on(html)
    assert shown == sorted(sizes, key=lambda name: (-sizes[name], name))


def test_the_header_links_flip_the_direction_of_the_current_sort(catalog):
    html = catalog.client().get("/", {"sort": "tags", "q": "team"}).content.decode()
    assert 'aria-sort="ascending"' in html
    assert 'href="?sort=-tags&amp;q=team"' in html or 'href="?q=team&amp;sort=-tags"' in html


def test_it_filters_by_namespace_and_by_name(catalog):
    client = catalog.client()
    assert names_on(client.get("/", {"namespace": "team-a"}).content.decode()) == [
        "team-a/api",
        "team-a/web",
    ]
    assert names_on(client.get("/", {"namespace": "-"}).content.decode()) == ["hello"]
    html = client.get("/", {"q": "WOR"}).content.decode()  # names are lowercase
    assert names_on(html) == ["team-b/worker"]
    assert "1 repository matches “WOR”" in html
    empty = client.get("/", {"q": "nothing-like-this"}).content.decode()
    assert names_on(empty) == []
    assert "No repository matches" in empty


def test_the_htmx_branch_returns_the_results_fragment_alone(catalog):
    response = catalog.client().get(
        "/", {"q": "team-a", "sort": "-name"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<form" not in html
    assert names_on(html) == ["team-a/web", "team-a/api"]
    assert 'name="sort" value="-name" form="repository-filters"' in html
    assert "HX-Request" in response["Vary"]


def test_full_page_responses_vary_on_hx_request_too(catalog):
    response = catalog.client().get("/")
    assert "<html" in response.content.decode()
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_full_page(catalog):
    response = catalog.client().get(
        "/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


def test_the_page_works_without_javascript(catalog):
    """The filter form is a plain GET form with a submit button; sort and page are links."""
    html = catalog.client().get("/").content.decode()
    form = html.split('<form class="filters"', 1)[1].split("</form>", 1)[0]
    assert 'method="get" action="/"' in form
    assert '<button type="submit">Filter</button>' in form
    assert '<label for="filter-q">' in form and '<label for="filter-namespace">' in form
    assert re.search(r'<a href="\?sort=-name" hx-get="\?sort=-name"', html)


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "bogus"},
        {"page": "two"},
        {"page": "0"},
        {"namespace": "Team-A"},
        # Long and invalid: a backtracking component pattern would take minutes on it.
        {"namespace": "a" * 60 + "!"},
    ],
)
def test_bad_parameters_are_a_400_page_with_a_message(catalog, query):
    response = catalog.client().get("/", query)
    html = response.content.decode()
    assert response.status_code == 400
    assert "Bad request" in html
    key = next(iter(query))
    assert f"{key}=" in html  # the message names the parameter


def test_a_page_past_the_end_is_a_404_page(catalog):
    response = catalog.client().get("/", {"page": "7"})
    assert response.status_code == 404
    assert "There is no page 7: this list has 1 page." in response.content.decode()


def test_a_nul_byte_in_the_filter_is_refused(catalog):
    # Refused for every view at one place: registryui.core.middleware.RejectUnsafeInputMiddleware.
    response = catalog.client().get("/", {"q": "team\x00-a"}, HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    assert "it contains a NUL character in the query string" in response.content.decode()


def _add_repositories(count: int) -> None:
    manifest = Manifest.objects.order_by("id").first()
    now = timezone.now()
    repositories = Repository.objects.bulk_create(
        [
            Repository(
                name=f"bulk/r{i:04d}", namespace="bulk", tag_count=1, size=i, last_updated_at=now
            )
            for i in range(count)
        ]
    )
    Tag.objects.bulk_create(
        [Tag(repository=r, name="latest", manifest=manifest) for r in repositories]
    )


def test_it_paginates(catalog):
    _add_repositories(120)
    client = catalog.client()
    first = client.get("/", {"namespace": "bulk"}).content.decode()
    assert names_on(first)[:2] == ["bulk/r0000", "bulk/r0001"]
    assert len(names_on(first)) == 50
    assert "Page 1 of 3" in first
    last = client.get("/", {"namespace": "bulk", "page": "3"}).content.decode()
    assert names_on(last)[-1] == "bulk/r0119"
    assert len(names_on(last)) == 20
    assert 'rel="next"' not in last and 'rel="prev"' in last
    # The pager keeps the filter.
    assert 'href="?namespace=bulk&amp;page=2"' in last


@pytest.mark.parametrize("persona", ["superuser", "a_viewer"])
def test_the_number_of_queries_does_not_grow_with_the_catalog(
    catalog, django_assert_max_num_queries, persona
):
    client = catalog.client(persona)
    client.get("/")  # warm up: session, content types
    with django_assert_max_num_queries(9) as small:
        assert client.get("/").status_code == 200
    _add_repositories(300)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/", {"sort": "-size"}).status_code == 200


def test_the_page_says_when_the_catalog_was_synced(catalog):
    html = catalog.client().get("/").content.decode()
    assert "Catalog synced <time" in html
    assert 'class="banner' not in html


def test_a_stale_catalog_shows_a_banner_but_still_renders(catalog, settings):
    SyncRun.objects.update(finished_at=timezone.now() - timezone.timedelta(hours=3))
    settings.SYNC_STALE_AFTER = 3600
    html = catalog.client().get("/").content.decode()
    assert "This data may be out of date" in html
    assert "no complete sync for more than 1 hour" in html
    assert names_on(html)  # still served from the database
