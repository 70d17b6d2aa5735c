"""The tag and digest page ``/r/<name>:<tag>`` / ``/r/<name>@<digest>``: facts, config, layers,
history, platforms of an index, other tags on the image, pull commands, bounded queries."""

from __future__ import annotations

import hashlib
import html as html_lib
import re

import pytest

from registryui.catalog.models import IndexChild, Layer, Manifest, Repository, Tag
from registryui.registry import mediatypes


def media_type_code(media_type: str) -> str:
    """A media type as the facts show it: whole on each side of a line break after "/"."""
    head, _, tail = media_type.partition("/")
    return (
        f'<code class="media-type"><span class="nowrap">{head}/</span><wbr>'
        f'<span class="nowrap">{tail}</span></code>'
    )


def main(response) -> str:
    return html_lib.unescape(response.content.decode().split("<main", 1)[1].split("</main>", 1)[0])


def section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"', 1)[1].split("</section>", 1)[0]


def test_a_tag_page_shows_the_image_facts(catalog):
    response = catalog.client("a_viewer").get("/r/team-a/api:1.4")
    assert response.status_code == 200
    html = main(response)
    digest = catalog.digest("team-a/api:1.4")
    manifest = Manifest.objects.get(digest=digest)
    assert '<h1 class="reference">team-a/api<span class="sep">:</span>1.4</h1>' in html
    assert f'<code class="digest" id="manifest-digest">{digest}</code>' in html
    assert media_type_code(mediatypes.OCI_MANIFEST) in html
    assert f'title="{manifest.total_size:,} bytes, compressed">{manifest.total_size} B<' in html
    assert 'title="2026-10-01 10:00:00 UTC"' in html
    assert (
        '<dt>OS / architecture</dt><dd class="platforms"><span class="platform">linux/amd64</span>'
        in html
    )


def test_the_config_is_shown(catalog):
    html = main(catalog.client().get("/r/team-a/api:1.4"))
    config = html.split('class="config-list"', 1)[1].split("</dl>", 1)[0]
    assert '<dt>Entrypoint</dt><dd><code>["python", "/layer0/app.py"]</code>' in config
    assert '<dt>Cmd</dt><dd><code>["--port", "8080"]</code>' in config
    assert "<code>/srv</code>" in config
    assert "<code>1000:1000</code>" in config
    assert '<code class="chip">8080/tcp</code>' in config
    assert "<li><code>APP_ENV=production</code></li>" in config
    assert "<code>org.opencontainers.image.version</code></th><td>1.4</td>" in config
    assert (
        '<a href="https://git.example.com/team-a/api" rel="noopener noreferrer nofollow">' in config
    )


def test_layers_have_their_share_of_the_total_and_history_their_commands(catalog):
    digest = catalog.digest("team-a/api:1.4")
    manifest = Manifest.objects.get(digest=digest)
    layers = list(Layer.objects.filter(manifest=manifest).order_by("position"))
    assert len(layers) == 2
    html = main(catalog.client().get("/r/team-a/api:1.4"))
    table = html.split('class="layer-list"', 1)[1].split("</table>", 1)[0]
    for layer in layers:
        share = f"{100 * layer.size / manifest.total_size:.1f}%"
        row = table.split(f'title="{layer.digest}"', 1)[1].split("</tr>", 1)[0]
        assert f"{layer.size} B" in row
        assert f'<meter min="0" max="100" value="{share[:-1]}"' in row
        assert f"<span>{share}</span>" in row
    # The config blob completes the total.
    assert f'title="{manifest.config_digest}"' in table
    history = html.split('class="history-list"', 1)[1].split("</ol>", 1)[0]
    assert history.count("<li") == 2
    assert "<code>/bin/sh -c #(nop) ADD layer0 /</code>" in history
    assert "<code>/bin/sh -c #(nop) ADD layer1 /</code>" in history


def test_the_pull_commands_use_the_public_host(catalog):
    digest = catalog.digest("team-a/api:1.4")
    html = main(catalog.client().get("/r/team-a/api:1.4"))
    assert 'data-command="docker pull registry.example.com/team-a/api:1.4"' in html
    assert f'data-command="docker pull registry.example.com/team-a/api@{digest}"' in html
    assert html.count('class="copy"') == 2


def test_an_index_page_pulls_each_platform_by_the_index_digest_and_its_own(catalog):
    index = catalog.digest("team-a/web:2.0")
    html = main(catalog.client().get("/r/team-a/web:2.0"))
    commands = re.findall(r'<code class="command" id="([^"]+)" data-command="([^"]*)"', html)
    assert [c for _, c in commands][:4] == [
        "docker pull registry.example.com/team-a/web:2.0",
        f"docker pull registry.example.com/team-a/web@{index}",
        f"docker pull --platform linux/amd64 registry.example.com/team-a/web@{index}",
        commands[3][1],
    ]
    assert re.fullmatch(
        r"docker pull registry\.example\.com/team-a/web@sha256:[0-9a-f]{64}", commands[3][1]
    )
    assert commands[3][1] != commands[1][1]
    assert f"docker pull --platform linux/arm64/v8 registry.example.com/team-a/web@{index}" in [
        c for _, c in commands
    ]
    # Shown whole: a break is offered after "/", ":" and "@" only, never inside the digest.
    shown = html.split('id="pull-digest"', 1)[1].split("</code>", 1)[0]
    assert f'sha256:</span><wbr><span class="seg">{index.split(":")[1]}</span>' in shown


def test_other_tags_on_this_image_are_listed_and_narrowed_by_the_resolver(catalog):
    as_superuser = main(catalog.client("superuser").get("/r/team-a/api:1.5"))
    others = section(as_superuser, "others-heading")
    assert re.findall(r'<li><a href="/r/team-a/api:([^"]+)">', others) == ["latest", "stable"]
    assert '<a href="/r/team-b/worker:borrowed">team-b/worker:borrowed</a>' in others
    # A viewer of team-a does not learn that team-b holds the same image.
    as_viewer = section(main(catalog.client("a_viewer").get("/r/team-a/api:1.5")), "others-heading")
    assert "team-b" not in as_viewer
    assert re.findall(r'<li><a href="/r/team-a/api:([^"]+)">', as_viewer) == ["latest", "stable"]
    # ... nor that the canary shares hello's image.
    hello = section(main(catalog.client("a_viewer").get("/r/hello:latest")), "others-heading")
    assert "secret" not in hello
    assert "No other tag points at this image." in hello


def test_a_digest_page_lists_every_tag_of_the_image(catalog):
    digest = catalog.digest("team-a/api:1.5")
    response = catalog.client("a_viewer").get(f"/r/team-a/api@{digest}")
    html = main(response)
    assert response.status_code == 200
    assert f'<span class="digest-title">{digest}</span>' in html
    assert re.findall(r'<li><a href="/r/team-a/api:([^"]+)">', section(html, "others-heading")) == [
        "1.5",
        "latest",
        "stable",
    ]
    # By digest only: no "pull by tag".
    assert "Pull by tag" not in html
    assert f'data-command="docker pull registry.example.com/team-a/api@{digest}"' in html


def test_a_docker_schema2_image(catalog):
    html = main(catalog.client().get("/r/team-b/worker:v1"))
    assert media_type_code(mediatypes.DOCKER_MANIFEST) in html
    assert "Image (Docker format)" in html
    assert '<dt>Cmd</dt><dd><code>["/worker.sh"]</code>' in html


def test_an_index_has_one_section_per_platform(catalog):
    index = Manifest.objects.get(digest=catalog.digest("team-a/web:2.0"))
    children = {
        entry.platform: entry.child
        for entry in IndexChild.objects.filter(index=index).select_related("child")
    }
    assert set(children) == {"linux/amd64", "linux/arm64/v8"}
    html = main(catalog.client().get("/r/team-a/web:2.0"))
    assert "Multi-platform index" in html
    assert media_type_code(mediatypes.OCI_INDEX) in html
    platforms = html.split('class="platform-list"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<a href="#platform-\d">([^<]+)</a>', platforms) == [
        "linux/amd64",
        "linux/arm64/v8",
    ]
    for number, (platform, child) in enumerate(children.items(), start=1):
        part = html.split(f'<section class="platform-section" id="platform-{number}"', 1)[1]
        part = part.split('<section class="platform-section"', 1)[0]
        assert f">{platform}</h2>" in part
        assert (
            f'<a href="/r/team-a/web@{child.digest}"><code class="digest">{child.digest}</code>'
            in part
        )
        layer = Layer.objects.get(manifest=child)
        assert f'title="{layer.digest}"' in part
        assert "<code>/bin/sh -c #(nop) ADD layer0 /</code>" in part
    assert re.findall(r'<li><a href="/r/team-a/web:([^"]+)">', section(html, "others-heading")) == [
        "latest"
    ]


def test_a_platform_image_of_an_index_links_back_to_the_index_tags(catalog):
    index = Manifest.objects.get(digest=catalog.digest("team-a/web:2.0"))
    arm = IndexChild.objects.get(index=index, architecture="arm64").child
    response = catalog.client("a_viewer").get(f"/r/team-a/web@{arm.digest}")
    assert response.status_code == 200
    parents = section(main(response), "parents-heading")
    assert re.findall(r'<a href="/r/team-a/web:([^"]+)">', parents) == ["2.0", "latest"]
    assert '<span class="platform">linux/arm64/v8</span>' in parents


def _index_listing(child: Manifest, name: str) -> Manifest:
    """A synthetic index (rows only) whose one platform is ``child``."""
    index = Manifest.objects.create(
        digest="sha256:" + hashlib.sha256(name.encode()).hexdigest(),
        media_type=mediatypes.OCI_INDEX,
        kind=Manifest.Kind.INDEX,
        size=300,
        raw="{}",
    )
    IndexChild.objects.create(
        index=index, child=child, position=0, os="linux", architecture="arm64", variant="v8"
    )
    return index


def test_the_index_tags_are_found_however_many_old_indexes_list_the_image(catalog):
    """Manifests are kept forever: a platform image that rebuilds leave unchanged is listed
    by every index built since, most of them no longer tagged."""
    index = Manifest.objects.get(digest=catalog.digest("team-a/web:2.0"))
    arm = IndexChild.objects.get(index=index, architecture="arm64").child
    for night in range(60):
        _index_listing(arm, f"old-{night}")
    Tag.objects.create(
        repository=Repository.objects.get(name="team-a/web"),
        name="nightly",
        manifest=_index_listing(arm, "tonight"),
    )
    parents = section(main(catalog.client().get(f"/r/team-a/web@{arm.digest}")), "parents-heading")
    assert re.findall(r'<a href="/r/team-a/web:([^"]+)">', parents) == ["2.0", "latest", "nightly"]


def test_an_image_of_another_repository_is_a_404(catalog):
    web = catalog.digest("team-a/web:2.0")
    response = catalog.client().get(f"/r/team-a/api@{web}")
    assert response.status_code == 404
    assert "team-a/api has no manifest" in response.content.decode()


def test_an_unknown_tag_is_a_404_with_a_search_link(catalog):
    response = catalog.client().get("/r/team-a/api:9.9")
    html = main(response)
    assert response.status_code == 404
    assert "team-a/api has no tag 9.9." in html
    assert '<a href="/search/?q=team-a/api">Search for “team-a/api”</a>' in html


def test_a_hidden_tag_is_a_404(catalog):
    assert catalog.client("a_viewer").get("/r/team-b/worker:v1").status_code == 404
    assert catalog.client("a_viewer").get("/r/secret/vault:latest").status_code == 404


@pytest.mark.parametrize("persona", ["superuser", "a_viewer"])
def test_the_number_of_queries_does_not_grow_with_the_tags(
    catalog, django_assert_max_num_queries, persona
):
    client = catalog.client(persona)
    client.get("/r/team-a/api:1.5")
    # 17: the "Attached" section and the lineage (issue 17) read 6 bounded queries (one asks
    # whether push notifications linked referrers pushed by digest, on any registry; the
    # attached tags are two index look-ups, by scheme name and by subject, not one OR).
    with django_assert_max_num_queries(17) as few:
        assert client.get("/r/team-a/api:1.5").status_code == 200
    repository = Repository.objects.get(name="team-a/api")
    manifest = Manifest.objects.get(digest=catalog.digest("team-a/api:1.5"))
    Tag.objects.bulk_create(
        [Tag(repository=repository, name=f"same-{i:04d}", manifest=manifest) for i in range(400)]
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/r/team-a/api:1.5")
    others = section(main(response), "others-heading")
    assert len(re.findall(r'<li><a href="/r/team-a/api:', others)) == 50
    assert "and more in" in others


def test_the_index_page_queries_are_bounded_too(catalog, django_assert_max_num_queries):
    client = catalog.client()
    client.get("/r/team-a/web:2.0")
    with django_assert_max_num_queries(13):
        assert client.get("/r/team-a/web:2.0").status_code == 200


def test_the_digest_page_offers_retag_and_delete_image_to_a_deleter(catalog):
    digest = catalog.samples.digests["team-a/api:1.4"]
    html = catalog.client("a_deleter").get(f"/r/team-a/api@{digest}").content.decode()
    assert f'href="/r/team-a/api@{digest}/-/retag"' in html
    assert f'href="/r/team-a/api@{digest}/-/delete-image"' in html
    viewer = catalog.client("a_viewer").get(f"/r/team-a/api@{digest}").content.decode()
    assert "/-/" not in viewer
