"""Bulk delete: tags ticked on the repository page, one confirmation with everything and the
combined bytes, then one action."""

from __future__ import annotations

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from registryui.catalog.models import Tag
from registryui.cleanup.actions import Actor, delete_tags
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from tests.cleanup.support import audit, repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(world):
    """team-a/shop: old-1 + old-2 + keep on image A; old-3 alone on B; new alone on C; and
    team-a/web, a multi-platform index tagged 1 and 2."""
    for name in ("a", "b", "c"):
        world.image(name, size=3000 + len(world.pushed) * 100)
    for tag, image in (("old-1", "a"), ("old-2", "a"), ("keep", "a"), ("old-3", "b"), ("new", "c")):
        world.push(image, f"team-a/shop:{tag}")
    world.sync()
    return world


def bulk_url(*tags: str) -> str:
    return "/r/team-a/shop/-/bulk-delete?" + "&".join(f"tag={t}" for t in tags)


def test_one_confirmation_lists_everything_and_the_combined_bytes(shop, personas):
    client = personas["a_deleter"].client()
    page = client.get(bulk_url("old-1", "old-2", "old-3", "gone-already"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Delete 3 tags of <code>team-a/shop</code>?" in html
    # old-1 and old-2 leave image A (keep stays on it); old-3 takes image B with it.
    assert '<code class="sibling">keep</code>' in html
    assert "Images deleted" in html and "Tags removed, image kept" in html
    assert "<code>gone-already</code>" in html  # named as not found, not an error
    predicted = int(html.split('class="bytes-freed" data-bytes="')[1].split('"')[0])
    single = client.get("/r/team-a/shop:old-3/-/delete").content.decode()
    assert f'data-bytes="{predicted}"' in single  # only image B comes back
    values = sorted(part.split('"')[0] for part in html.split('name="confirm" value="')[1:])
    assert [v.split("@")[0] for v in values] == ["old-1", "old-2", "old-3"]
    before = shop.registry.blob_bytes()

    response = client.post("/r/team-a/shop/-/bulk-delete", {"confirm": values}, follow=True)

    assert response.status_code == 200, response.content.decode()
    assert shop.registry_tags("team-a/shop") == ["keep", "new"]
    assert shop.digest("team-a/shop:keep") == shop.pushed["team-a/shop:old-1"]
    assert sorted(shop.tags("team-a/shop")) == ["keep", "new"]
    [summary] = audit("bulk_delete")
    assert sorted(summary.details["removed"]) == ["old-1", "old-2", "old-3"]
    assert summary.details["freed_bytes"] == predicted
    steps = audit("delete_tag") + audit("delete_image")
    assert {e.details["batch"] for e in steps} == {summary.details["batch"]}
    assert sorted(e.reference for e in steps) == ["old-1", "old-2", "old-3"]
    assert before - shop.blob_bytes_after_gc() == predicted


def test_selecting_every_tag_of_an_image_deletes_the_image(shop, personas):
    client = personas["a_deleter"].client()
    html = client.get(bulk_url("old-1", "old-2", "keep")).content.decode()
    assert "Tags removed, image kept" not in html
    values = [part.split('"')[0] for part in html.split('name="confirm" value="')[1:]]
    response = client.post("/r/team-a/shop/-/bulk-delete", {"confirm": values}, follow=True)
    assert response.status_code == 200
    [entry] = audit("delete_image")
    assert entry.details["tags"] == ["keep", "old-1", "old-2"]
    assert shop.registry_tags("team-a/shop") == ["new", "old-3"]


def test_a_batch_of_images_costs_no_database_work_per_image_beyond_its_audit_entry(world):
    """The bytes are estimated once and the database written once per execution: a large
    bulk delete or retention run must not redo per image what grows with the repository."""
    with RegistryClient(world.registry.url, retries=0) as client:
        seeded = Seeder(client).seed(["team-a/many"], [f"t{i:02d}" for i in range(14)])
    world.sync()
    tags = seeded.tags["team-a/many"]

    def queries_to_delete(names: list[str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            execution = delete_tags(
                repository("team-a/many"), {t: tags[t] for t in names}, Actor(name="t")
            )
        assert execution.ok and sorted(execution.deleted_tags) == names, execution.error
        return len(captured)

    two = queries_to_delete(["t00", "t01"])
    ten = queries_to_delete([f"t{i:02d}" for i in range(2, 12)])

    assert ten - two <= 8  # one audit INSERT per image, nothing else per image
    assert world.tags("team-a/many") == {"t12": tags["t12"], "t13": tags["t13"]}
    assert repository("team-a/many").tag_count == 2


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("?tag=-bad", "is not a valid tag"),
    ],
)
def test_bad_selections_are_a_400(shop, personas, query, text):
    response = personas["a_deleter"].client().get(f"/r/team-a/shop/-/bulk-delete{query}")
    assert response.status_code == 400
    assert text in response.content.decode()


@pytest.mark.parametrize("query", ["", "?tag=", "?tag=+&tag="])
def test_nothing_selected_is_said_next_to_the_button_not_a_400(shop, personas, query):
    client = personas["a_deleter"].client()
    response = client.get(f"/r/team-a/shop/-/bulk-delete{query}")
    assert response.status_code == 302
    assert response["Location"] == "/r/team-a/shop?bulk=none#bulk-delete"
    html = client.get(response["Location"]).content.decode()
    form = html.split('id="bulk-delete"', 1)[1].split("</form>", 1)[0]
    assert 'class="bulk-note banner warning" role="status"' in form
    assert "No tag was selected: tick the tags to delete" in form
    # The tag table is there to tick, and without the parameter the note is empty.
    assert 'form="bulk-delete"' in html
    plain = client.get("/r/team-a/shop").content.decode()
    assert "No tag was selected" not in plain


def test_bulk_delete_permissions(shop, personas):
    mark = shop.registry.mark()
    value = f"old-3@{shop.pushed['team-a/shop:old-3']}"
    assert personas["a_viewer"].client().get(bulk_url("old-3")).status_code == 403
    assert (
        personas["a_viewer"]
        .client()
        .post("/r/team-a/shop/-/bulk-delete", {"confirm": value}, follow=True)
        .status_code
        == 403
    )
    assert personas["b_admin"].client().get(bulk_url("old-3")).status_code == 404
    assert shop.registry.requests_since(mark) == []
    assert Tag.objects.filter(repository__name="team-a/shop").count() == 5


def render(template: str, user, **context) -> str:
    request = RequestFactory().get("/r/team-a/shop")
    request.user = user
    return Template(template).render(Context({"request": request, **context}))


def test_the_partials_other_pages_include(shop, personas):
    tag = Tag.objects.select_related("repository").get(repository__name="team-a/shop", name="old-3")
    deleter, viewer = personas["a_deleter"].fresh_user(), personas["a_viewer"].fresh_user()

    form = render(
        '{% include "cleanup/_repository_actions.html" %}', deleter, repository=tag.repository
    )
    assert 'id="bulk-delete"' in form and 'action="/r/team-a/shop/-/bulk-delete"' in form
    assert 'method="get"' in form and "cleanup/bulk-select.js" in form
    box = render('{% include "cleanup/_bulk_checkbox.html" %}', deleter, tag=tag)
    assert 'name="tag" value="old-3" form="bulk-delete"' in box
    buttons = render('{% include "cleanup/_tag_actions.html" %}', deleter, tag=tag)
    assert 'href="/r/team-a/shop:old-3/-/delete"' in buttons
    assert 'href="/r/team-a/shop:old-3/-/delete-image"' in buttons
    assert 'href="/r/team-a/shop:old-3/-/retag"' in buttons

    for partial in ("_repository_actions", "_bulk_checkbox", "_tag_actions"):
        html = render(
            f'{{% include "cleanup/{partial}.html" %}}', viewer, tag=tag, repository=tag.repository
        )
        assert "<form" not in html and "<input" not in html and "<a" not in html


def test_a_tags_table_of_checkboxes_costs_no_query_per_row(
    shop, personas, django_assert_max_num_queries
):
    repository = Tag.objects.get(repository__name="team-a/shop", name="new").repository
    tags = list(Tag.objects.filter(repository=repository))  # repository not loaded on them
    user = personas["a_deleter"].fresh_user()
    template = (
        "{% for tag in tags %}{% include 'cleanup/_bulk_checkbox.html' %}"
        "{% include 'cleanup/_tag_actions.html' %}{% endfor %}"
    )
    with django_assert_max_num_queries(2):  # the user's rules, loaded once
        html = render(template, user, tags=tags, repository=repository)
    assert html.count('form="bulk-delete"') == 5
    assert html.count('href="/r/team-a/shop:') == 20  # retag, add tags, delete tag, delete image
