"""Hidden repositories change nothing a user sees on the storage page.

Each persona's figures are taken, then images are pushed into and deleted from repositories
the persona cannot see, sharing layers and a whole image with the visible ones (which changes
the exact, registry-wide sharing), and the registry is synced again: the persona's report and
page must be exactly as before, while the superuser's do change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from registryui.storage.figures import storage_report

from .support import BASE_OS, BASE_RUNTIME, Scenario, spec
from .test_disk import by_name, scenario  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LIMITED = ("a_viewer", "b_admin", "public", "no_team")


def report(persona):
    persona.apply_site_settings()  # anonymous viewing on for "public" only
    return storage_report(persona.fresh_user(), now=NOW)


def page(persona) -> str:
    response = persona.client().get("/storage/")
    assert response.status_code == 200
    body = response.content.decode()
    main = body[body.index("<h1>Storage</h1>") : body.index("</main>")]
    # The growth chart ends "now", which moves with the clock; its points are compared in
    # the report instead.
    return re.sub(
        r'<section class="storage-section" aria-labelledby="storage-growth">.*?</section>',
        "",
        main,
        flags=re.S,
    )


def test_hidden_repositories_change_nothing_a_user_sees(scenario: Scenario, personas):  # noqa: F811
    before = {name: report(personas[name]) for name in LIMITED}
    pages = {name: page(personas[name]) for name in LIMITED}
    everything = report(personas["superuser"])

    # Hidden from all four: a new image on both base layers, team-a/web's image copied into
    # the hidden repository, and secret/vault's own image deleted.
    scenario.push("secret/vault:2", spec("vault-2", BASE_OS, BASE_RUNTIME, size=7000))
    scenario.push("platform-hidden/x:1", spec("x-1", BASE_RUNTIME, size=1000))
    from registryui.devtools.images import skopeo_copy

    skopeo_copy(
        scenario.layout,
        scenario.names["team-a/web:1"],
        f"{scenario.registry.host}/secret/vault:web-copy",
    )
    scenario.sync()

    after = report(personas["superuser"])
    web_before = by_name(everything.repositories)["team-a/web"]
    web_after = by_name(after.repositories)["team-a/web"]
    assert web_after.exclusive < web_before.exclusive  # the copy took all of it, for the exact view
    assert after.total.referenced > everything.total.referenced

    for name in LIMITED:
        assert report(personas[name]) == before[name], name
        shown = page(personas[name])
        assert shown == pages[name], name
        assert "secret" not in shown and "platform-hidden" not in shown


def test_a_limited_user_sees_an_upper_bound_over_their_repositories(scenario: Scenario, personas):  # noqa: F811
    viewer = report(personas["a_viewer"])
    exact = report(personas["superuser"])
    assert viewer.bound and not exact.bound
    assert set(by_name(viewer.repositories)) == {"team-a/api", "team-a/web", "hello"}
    assert [team.name for team in viewer.teams] == ["team-a"]
    for name, figure in by_name(viewer.repositories).items():
        true = by_name(exact.repositories)[name]
        assert figure.referenced == true.referenced
        assert figure.exclusive >= true.exclusive  # never less than garbage-collect frees
    # team-a/api shares BASE_OS with hidden secret/vault and its image with hidden
    # team-b/worker: for the viewer only what team-a/web and hello share with it counts.
    api = by_name(viewer.repositories)["team-a/api"]
    assert api.exclusive > by_name(exact.repositories)["team-a/api"].exclusive
    # The viewer's total is the distinct blobs of their three repositories.
    namespaces = by_name(viewer.namespaces)
    assert viewer.total.referenced == namespaces["team-a"].referenced + namespaces[""].referenced
    # The most shared layer, counted over the images they see: api:1, api:2 and web:1.
    assert (viewer.shared_layers[0].images, viewer.shared_layers[0].repositories) == (3, 2)
    # No growth of the registry as a whole: the sum over their repositories.
    assert not viewer.growth.distinct


def test_the_page_for_personas(scenario: Scenario, personas):  # noqa: F811
    body = personas["superuser"].client().get("/storage/").content.decode()
    assert 'data-testid="storage-bound"' not in body
    assert "team-b/tools" in body and "secret/vault" in body
    # One snapshot so far: a flat line from it to now, and the table alternative.
    assert '<svg class="line-chart"' in body and 'data-testid="growth-points"' in body
    viewer = personas["a_viewer"].client().get("/storage/").content.decode()
    assert 'data-testid="storage-bound"' in viewer
    assert "Exclusive (up to)" in viewer
    assert 'href="/storage/"' in viewer  # the nav link
    no_team = personas["no_team"].client().get("/storage/").content.decode()
    assert "There is no repository you can see yet." in no_team
    assert 'href="/storage/"' not in no_team  # no rule, no link
    bad = personas["superuser"].client().get("/storage/?page=x")
    assert bad.status_code == 400
    fragment = (
        personas["superuser"].client().get("/storage/?page=1", headers={"HX-Request": "true"})
    )
    assert (
        b"<html" not in fragment.content and b'data-testid="repository-figures"' in fragment.content
    )
