"""The search page ``/search/?q=``: results grouped by kind, the redirect for a full reference,
the htmx fragment, the empty page, and a constant number of queries."""

from __future__ import annotations

import re

import pytest

from registryui.catalog.models import Repository, Tag


def headings(html: str) -> list[str]:
    return re.findall(r'<h2 id="results-(\w+)">', html)


def test_results_are_grouped_by_kind_and_link_to_their_pages(catalog):
    digest = catalog.digest("team-a/api:1.5")
    response = catalog.client().get("/search/", {"q": "1.5"})
    html = response.content.decode()
    assert response.status_code == 200
    assert headings(html) == ["tags", "labels"]
    tags = html.split('id="results-tags"', 1)[1].split("</section>", 1)[0]
    assert '<a href="/r/team-a/api:1.5"><strong>team-a/api:1.5</strong></a>' in tags
    assert f"<code>{digest[7:19]}</code>" in tags
    labels = html.split('id="results-labels"', 1)[1].split("</section>", 1)[0]
    assert (
        '<a href="/r/team-a/api:1.5"><strong>team-a/api:1.5, latest, stable</strong></a>' in labels
    )
    assert "<code>org.opencontainers.image.version</code> = 1.5" in labels


def test_repositories_and_digests_have_their_own_groups(catalog):
    client = catalog.client()
    html = client.get("/search/", {"q": "team-a"}).content.decode()
    assert headings(html) == ["repositories"]
    assert re.findall(r'<a href="/r/([^"]+)"><strong>', html) == ["team-a/api", "team-a/web"]
    digest = catalog.digest("team-b/worker:v1")
    html = client.get("/search/", {"q": digest[7:15]}).content.decode()
    assert headings(html) == ["digests"]
    assert f'<a href="/r/team-b/worker@{digest}">' in html
    assert "tags v1" in html


def test_a_full_reference_redirects_straight_to_it(catalog):
    client = catalog.client("a_viewer")
    response = client.get("/search/", {"q": "team-a/api:1.4"})
    assert response.status_code == 302
    assert response["Location"] == "/r/team-a/api:1.4"
    digest = catalog.digest("team-a/web:2.0")
    response = client.get("/search/", {"q": f"registry.example.com/team-a/web@{digest}"})
    assert response.status_code == 302
    assert response["Location"] == f"/r/team-a/web@{digest}"


def test_a_hidden_reference_does_not_redirect_and_finds_nothing(catalog):
    response = catalog.client("a_viewer").get("/search/", {"q": "team-b/worker:v1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing found for “team-b/worker:v1”." in html


def test_while_typing_htmx_gets_the_fragment_with_the_exact_match_instead_of_a_redirect(catalog):
    response = catalog.client().get(
        "/search/", {"q": "team-a/api:1.4"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<form" not in html
    assert 'Exact match: <a href="/r/team-a/api:1.4"><strong>team-a/api:1.4</strong></a>' in html
    assert "HX-Request" in response["Vary"]


def test_the_empty_page_explains_what_search_finds(catalog):
    html = catalog.client().get("/search/").content.decode()
    assert "Search finds:" in html
    assert "registry.example.com/team-a/api@sha256:…" in html
    # The search box is a labelled plain form (works without JavaScript).
    assert '<label for="search-q">' in html
    assert 'method="get" action="/search/"' in html


def test_the_header_search_box_keeps_the_query(catalog):
    html = catalog.client().get("/search/", {"q": "web"}).content.decode()
    assert re.search(r'<input type="search" id="site-search" name="q" value="web"', html)


def test_notes_are_shown(catalog):
    html = catalog.client().get("/search/", {"q": "sha256:abc"}).content.decode()
    assert "Digest searches need at least 6 hex characters" in html


def test_anonymous_visitors_must_log_in(catalog):
    response = catalog.client("anonymous").get("/search/", {"q": "hello"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/search/")


def test_an_absurd_query_is_harmless(catalog):
    client = catalog.client()
    assert client.get("/search/", {"q": "\x00"}).status_code == 400  # NUL: refused everywhere
    for query in ("a" * 10_000, "<script>alert(1)</script>", "a" * 40 + "!"):
        response = client.get("/search/", {"q": query})
        assert response.status_code == 200
        assert "<script>alert" not in response.content.decode()


@pytest.mark.parametrize("query", ["build", "team", "sha256:385867f6", "https://git.example.com"])
def test_the_number_of_queries_does_not_grow_with_the_catalog(
    catalog, django_assert_max_num_queries, query
):
    client = catalog.client("a_viewer")
    client.get("/search/", {"q": query})
    with django_assert_max_num_queries(16) as few:
        assert client.get("/search/", {"q": query}).status_code == 200
    repository = Repository.objects.get(name="team-a/api")
    manifest = repository.tags.order_by("name").last().manifest
    Tag.objects.bulk_create(
        [Tag(repository=repository, name=f"build-{i:04d}", manifest=manifest) for i in range(500)]
    )
    Repository.objects.bulk_create([Repository(name=f"team-a/more-{i:03d}") for i in range(100)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/search/", {"q": query})
    assert response.status_code == 200
