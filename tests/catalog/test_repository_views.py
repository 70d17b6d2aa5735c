"""A repository's page ``/r/<name>``: the tags table (content, grouping by image, sorting,
pagination), the pull command, the htmx fragment, permissions and bounded queries."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from registryui.catalog.models import IndexChild, Manifest, Repository, Tag
from registryui.lib.natural import natural_key


def rows(html: str) -> list[str]:
    """Tag names in table order."""
    return re.findall(r'<th scope="row" class="tag-name"><a href="/r/[^"]+">([^<]+)</a>', html)


def groups(html: str) -> list[list[str]]:
    """Tag names per <tbody> (one per image)."""
    bodies = re.findall(r'<tbody class="image[^"]*"[^>]*>(.*?)</tbody>', html, re.S)
    return [rows(body) for body in bodies]


def test_the_tags_table_shows_digest_size_created_platforms_and_last_change(catalog):
    html = catalog.client("a_viewer").get("/r/team-a/api").content.decode()
    api_14 = catalog.digest("team-a/api:1.4")
    manifest = Manifest.objects.get(digest=api_14)
    body = html.split(f'data-digest="{api_14}"', 1)[1].split("</tbody>", 1)[0]
    assert '<a href="/r/team-a/api:1.4">1.4</a>' in body
    assert f"<code>{api_14[7:19]}</code>" in body
    assert f'href="/r/team-a/api@{api_14}"' in body
    assert f">{manifest.total_size} B<" in body  # under 1 KiB: in bytes
    assert 'title="2026-10-01 10:00:00 UTC"' in body  # created, absolute on hover
    assert '<span class="platform">linux/amd64</span>' in body


def test_tags_on_one_image_are_grouped(catalog):
    html = catalog.client().get("/r/team-a/api").content.decode()
    assert groups(html) == [["1.5", "latest", "stable"], ["1.4"]]
    shared = html.split('<tbody class="image shared"', 1)[1].split("</tbody>", 1)[0]
    assert "3 tags on this image" in shared
    assert shared.count('rowspan="3"') == 4  # digest, size, created, platforms: said once


def test_an_index_shows_each_platform_with_its_digest_and_size(catalog):
    html = catalog.client().get("/r/team-a/web").content.decode()
    assert groups(html) == [["2.0", "latest"]]
    children = IndexChild.objects.filter(
        index__digest=catalog.digest("team-a/web:2.0"), is_attestation=False
    ).order_by("position")
    items = re.findall(r'<ul class="platform-images">(.*?)</ul>', html, re.S)[0]
    platforms = re.findall(
        r'<li><span class="platform">([^<]+)</span> <a href="/r/team-a/web@([^"]+)"[^>]*>'
        r"<code>[0-9a-f]{12}</code></a> <span class=\"size\">([^<]+)</span></li>",
        items,
    )
    assert platforms == [(c.platform, c.child.digest, f"{c.child.total_size} B") for c in children]
    assert [p[0] for p in platforms] == ["linux/amd64", "linux/arm64/v8"]


@pytest.mark.parametrize(
    ("repository", "command"),
    [
        ("team-a/api", "docker pull registry.example.com/team-a/api:latest"),
        # No "latest": the newest tag (v2, built 2026-11-20).
        ("team-b/worker", "docker pull registry.example.com/team-b/worker:v2"),
        (
            "platform/tools/builder",
            "docker pull registry.example.com/platform/tools/builder:2026.11",
        ),
    ],
)
def test_the_pull_command_has_the_public_host(catalog, repository, command):
    html = catalog.client().get(f"/r/{repository}").content.decode()
    assert f'id="cmd-pull-repository" data-command="{command}"' in html
    assert 'data-copy-target="cmd-pull-repository"' in html


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("tag", ["1.4", "1.5", "latest", "stable"]),
        ("-tag", ["stable", "latest", "1.5", "1.4"]),
        ("-changed", ["1.5", "latest", "stable", "1.4"]),
        ("changed", ["1.4", "1.5", "latest", "stable"]),
        ("created", ["1.4", "1.5", "latest", "stable"]),
        ("-created", ["1.5", "latest", "stable", "1.4"]),
    ],
)
def test_it_sorts_by_each_column(catalog, sort, expected):
    html = catalog.client().get("/r/team-a/api", {"sort": sort, "view": "flat"}).content.decode()
    assert rows(html) == expected


def test_it_sorts_by_size_digest_and_platforms(catalog):
    client = catalog.client()
    client.get("/r/team-b/worker", {"view": "flat"})  # remembered for the next pages
    by_size = rows(client.get("/r/team-b/worker", {"sort": "size"}).content.decode())
    sizes = dict(
        Tag.objects.filter(repository__name="team-b/worker").values_list(
            "name", "manifest__total_size"
        )
    )
    assert by_size == sorted(sizes, key=lambda name: (sizes[name], natural_key(name)))
    by_digest = rows(client.get("/r/team-b/worker", {"sort": "-digest"}).content.decode())
    digests = dict(
        Tag.objects.filter(repository__name="team-b/worker").values_list("name", "manifest__digest")
    )
    expected = sorted(digests, key=lambda name: (_invert(digests[name]), natural_key(name)))
    assert by_digest == expected
    # Platforms: an index ("linux/amd64, linux/arm64/v8") sorts after its first platform alone.
    Tag.objects.create(
        repository=Repository.objects.get(name="team-a/web"),
        name="amd64-only",
        manifest=IndexChild.objects.get(
            index__digest=catalog.digest("team-a/web:2.0"), architecture="amd64"
        ).child,
    )
    html = client.get("/r/team-a/web", {"sort": "platforms"}).content.decode()
    assert rows(html) == ["amd64-only", "2.0", "latest"]
    html = client.get("/r/team-a/web", {"sort": "-platforms"}).content.decode()
    assert rows(html) == ["2.0", "latest", "amd64-only"]


def _invert(text: str) -> tuple[int, ...]:
    return (*(-ord(c) for c in text), 1)


def test_the_sorted_column_is_marked_for_assistive_technology(catalog):
    html = catalog.client().get("/r/team-a/api", {"sort": "size"}).content.decode()
    assert re.search(
        r'<th scope="col" class="num" aria-sort="ascending"><a href="\?sort=-size"', html
    )
    assert html.count('aria-sort="none"') == 6  # tag, digest, created, platforms, changed, pushed


def test_the_htmx_branch_returns_the_tags_fragment_alone(catalog):
    response = catalog.client().get(
        "/r/team-a/api", {"sort": "tag", "view": "flat"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="pull-repository"' not in html
    assert html.lstrip().startswith('<input type="hidden" name="sort" value="tag"')
    assert '<p class="summary">4 tags' in html
    assert rows(html) == ["1.4", "1.5", "latest", "stable"]
    assert "HX-Request" in response["Vary"]
    full = catalog.client().get("/r/team-a/api", {"sort": "tag", "view": "flat"})
    assert "HX-Request" in full["Vary"]
    # The fragment is exactly the part of the full page it replaces.
    assert html.strip() in full.content.decode()


def _add_tags(repository: Repository, count: int, *, manifest: Manifest | None = None) -> None:
    """Synthetic tags (rows only) on one of the repository's images."""
    manifest = manifest or repository.tags.order_by("name").first().manifest
    now = timezone.now()
    Tag.objects.bulk_create(
        [
            Tag(
                repository=repository,
                name=f"build-{i:04d}",
                sort_key=natural_key(f"build-{i:04d}"),
                manifest=manifest,
                changed_at=now - timezone.timedelta(minutes=i),
            )
            for i in range(count)
        ]
    )


def test_it_paginates_thousands_of_tags(catalog):
    repository = Repository.objects.get(name="team-a/api")
    _add_tags(
        repository, 120, manifest=Manifest.objects.get(digest=catalog.digest("team-a/api:1.5"))
    )
    client = catalog.client()
    first = client.get("/r/team-a/api", {"sort": "tag", "view": "flat"}).content.decode()
    assert len(rows(first)) == 50
    assert rows(first)[:2] == ["1.4", "1.5"]
    assert "124 tags, showing 1–50" in first  # noqa: RUF001 - the page's en dash
    assert "Page 1 of 3" in first
    third = client.get("/r/team-a/api", {"sort": "tag", "page": "3"}).content.decode()
    assert rows(third) == [f"build-{i:04d}" for i in range(98, 120)] + ["latest", "stable"]
    assert 'href="?sort=tag&amp;page=2"' in third
    assert client.get("/r/team-a/api", {"page": "4"}).status_code == 404
    # Grouped, the 123 tags of one image are one group of five: both images fit one page.
    grouped = client.get("/r/team-a/api", {"view": "grouped"}).content.decode()
    assert [len(g) for g in groups(grouped)] == [5, 1]
    assert "118 more tags" in grouped
    assert "124 tags on 2 images" in grouped


@pytest.mark.parametrize("persona", ["superuser", "a_viewer"])
def test_the_number_of_queries_does_not_grow_with_the_tags(
    catalog, django_assert_max_num_queries, persona
):
    client = catalog.client(persona)
    client.get("/r/team-a/api")
    # The page reads: the session, user, site settings and grants; the repository; the page of
    # images, their manifests and tags; the badges of what is attached to them (issue 17: the
    # manifests whose subject they are, by index, then their tags); the matching and hidden
    # tag counts (one query); freshness; the overview, or the labels it falls back to; the
    # pull panel's tag (``latest``, else the newest: two index look-ups, never a sort of every
    # tag); whom to ask for push access.
    with django_assert_max_num_queries(18) as few:
        assert client.get("/r/team-a/api", {"sort": "-size"}).status_code == 200
    budget = len(few.captured_queries)
    repository = Repository.objects.get(name="team-a/api")
    # Tags on both images, so that the page shows many groups and the counts are real.
    _add_tags(repository, 300)
    other = Manifest.objects.get(digest=catalog.digest("team-a/api:1.4"))
    Tag.objects.bulk_create(
        [Tag(repository=repository, name=f"old-{i}", manifest=other) for i in range(300)]
    )
    with django_assert_max_num_queries(budget):
        response = client.get("/r/team-a/api", {"sort": "-size"})
    assert response.status_code == 200
    assert len(rows(response.content.decode())) == 8  # groups of at most five tags
    client.get("/r/team-a/api", {"view": "flat"})
    with django_assert_max_num_queries(budget):
        response = client.get("/r/team-a/api", {"sort": "-size"})
    assert len(rows(response.content.decode())) == 50


def test_a_repository_the_user_may_not_see_is_a_404_like_an_unknown_one(catalog):
    client = catalog.client("a_viewer")
    hidden = client.get("/r/team-b/worker")
    unknown = client.get("/r/team-b/wurker")
    assert hidden.status_code == unknown.status_code == 404

    # Nothing tells a hidden repository from one that does not exist.
    def main(response) -> str:
        return response.content.decode().split("<main", 1)[1].split("</main>", 1)[0]

    assert "No such repository." in main(hidden)
    assert main(hidden).replace("worker", "wurker") == main(unknown)


def test_an_unknown_repository_is_a_404_with_a_search_link(catalog):
    response = catalog.client().get("/r/team-a/nothing")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'href="/search/?q=team-a/nothing"' in html


def test_a_bad_sort_is_a_400(catalog):
    response = catalog.client().get("/r/team-a/api", {"sort": "name"})
    assert response.status_code == 400
    assert "sort=&#x27;name&#x27; is not one of: tag, -tag" in response.content.decode()


def test_a_trailing_slash_redirects_to_the_reference(catalog):
    response = catalog.client().get("/r/team-a/api/?sort=tag")
    assert response.status_code == 301
    assert response["Location"] == "/r/team-a/api?sort=tag"


def test_an_action_url_no_app_answers_is_a_404(catalog):
    response = catalog.client().get("/r/team-a/api/-/frobnicate")
    assert response.status_code == 404
    assert "There is no action at /r/team-a/api/-/frobnicate." in response.content.decode()


def test_cleanup_actions_show_only_for_those_who_may_delete(catalog):
    deleter = catalog.client("a_deleter").get("/r/team-a/api").content.decode()
    assert 'action="/r/team-a/api/-/bulk-delete"' in deleter
    assert 'name="tag" value="1.4" form="bulk-delete"' in deleter
    viewer = catalog.client("a_viewer").get("/r/team-a/api").content.decode()
    assert "bulk-delete" not in viewer
    assert 'name="tag"' not in viewer


def test_the_tag_page_offers_delete_tag_and_image_to_a_deleter(catalog):
    html = catalog.client("a_deleter").get("/r/team-a/api:1.4").content.decode()
    assert 'href="/r/team-a/api:1.4/-/delete"' in html
    assert 'href="/r/team-a/api:1.4/-/delete-image"' in html
    viewer = catalog.client("a_viewer").get("/r/team-a/api:1.4").content.decode()
    assert "/-/delete" not in viewer


def test_only_get_and_head_are_allowed(catalog):
    client = catalog.client()
    assert client.head("/r/team-a/api").status_code == 200
    assert client.post("/r/team-a/api").status_code == 405


def test_a_repository_whose_tags_were_all_deleted_still_renders(catalog):
    Tag.objects.filter(repository__name="team-a/web").delete()
    html = catalog.client().get("/r/team-a/web").content.decode()
    assert "This repository has no tags" in html
