"""Freshness: when a page's data was synced, and the banners for a stale catalog, an
unreachable registry and a repository whose last sync failed. Pages still render from the
database in every case, without calling the registry."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from django.utils import timezone

from registryui.catalog.freshness import catalog_freshness, repository_freshness
from registryui.catalog.models import Repository, SyncRun
from registryui.catalog.upstream import build_client
from registryui.devtools.registry import free_port
from registryui.sync.syncer import Syncer


def failing_sync(settings, repository: str | None = None) -> SyncRun:
    """A real sync against a port where no registry listens (connection refused)."""
    settings.REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    settings.REGISTRY_RETRIES = 0
    syncer = Syncer(build_client(retries=0), concurrency=2)
    return syncer.run(repository)


def banners(html: str) -> list[str]:
    return [
        html_lib.unescape(part.split("</div>", 1)[0])
        for part in html.split('<div class="banner')[1:]
    ]


def test_after_a_good_sync_pages_say_when_and_show_no_banner(catalog):
    freshness = catalog_freshness()
    latest = SyncRun.objects.filter(scope="").latest()
    assert freshness.catalog_synced_at == latest.finished_at
    assert not freshness.stale and not freshness.unreachable and not freshness.repository_failed
    client = catalog.client()
    for path in ("/", "/search/?q=x", "/r/team-a/api", "/r/team-a/api:1.4"):
        html = client.get(path).content.decode()
        assert "synced <time" in html, path
        assert banners(html) == [], path


def test_an_unreachable_registry_is_a_banner_over_the_synced_data(catalog, settings):
    run = failing_sync(settings)
    assert run.status == SyncRun.Status.FAILED
    assert run.errors.get().code == "UNREACHABLE"
    freshness = catalog_freshness()
    assert freshness.unreachable
    # The good sync before it is still when the data was refreshed.
    assert freshness.catalog_synced_at < run.finished_at
    client = catalog.client("a_viewer")
    html = client.get("/").content.decode()
    [banner] = banners(html)
    assert "The registry did not answer" in banner
    assert "this page shows the data synced" in banner
    assert 'href="/r/team-a/api"' in html  # still served from the database
    tag_page = client.get("/r/team-a/api:1.4").content.decode()
    assert "The registry did not answer" in tag_page
    assert "docker pull registry.example.com/team-a/api:1.4" in tag_page


def test_a_failed_repository_sync_is_a_banner_on_its_pages(catalog, settings):
    failing_sync(settings, repository="team-a/api")
    repository = Repository.objects.get(name="team-a/api")
    assert repository.sync_failed
    freshness = repository_freshness(repository)
    assert freshness.repository_failed
    assert not freshness.unreachable  # a single-repository run says nothing of the catalog
    html = catalog.client().get("/r/team-a/api").content.decode()
    [banner] = banners(html)
    assert "The last sync of team-a/api failed" in banner
    assert repository.last_sync_error in banner  # staff who see the repository get the error
    assert "This page shows what was synced" in banner
    # Other repositories are fine; the list marks the failed one.
    assert banners(catalog.client().get("/r/team-a/web").content.decode()) == []
    listing = catalog.client().get("/").content.decode()
    assert (
        '<span class="badge warning"'
        in listing.split('href="/r/team-a/api"', 1)[1].split("</tr>")[0]
    )


def test_no_complete_sync_within_the_limit_is_stale(catalog, settings):
    settings.SYNC_STALE_AFTER = 600
    two_hours_ago = timezone.now() - timedelta(hours=2)
    SyncRun.objects.update(finished_at=two_hours_ago)
    Repository.objects.update(last_synced_at=two_hours_ago)
    assert catalog_freshness().stale
    html = catalog.client().get("/").content.decode()
    [banner] = banners(html)
    assert "This data may be out of date" in banner
    assert "no complete sync for more than 10 minutes" in banner
    # A repository synced on its own since (by a notification) is fresh.
    Repository.objects.filter(name="team-a/api").update(last_synced_at=timezone.now())
    assert banners(catalog.client().get("/r/team-a/api").content.decode()) == []
    assert len(banners(catalog.client().get("/r/team-a/web").content.decode())) == 1


def test_single_repository_runs_do_not_refresh_the_catalog(catalog):
    SyncRun.objects.all().delete()
    SyncRun.objects.create(scope="team-a/api", status="succeeded", finished_at=timezone.now())
    freshness = catalog_freshness()
    assert freshness.never_synced and freshness.stale
    html = catalog.client().get("/").content.decode()
    assert "The registry has not been synced yet." in html


def test_a_run_level_failure_that_is_not_the_network(catalog):
    SyncRun.objects.create(
        scope="",
        status="failed",
        finished_at=timezone.now(),
        error="Listing the catalog failed after 0 names: The registry refused our credentials.",
    )
    freshness = catalog_freshness()
    assert not freshness.unreachable and not freshness.stale
    [banner] = banners(catalog.client().get("/").content.decode())
    assert "The last sync did not finish" in banner
    assert "refused our credentials" not in banner  # on the status page and in the log
    assert 'href="/status/"' in banner  # staff are pointed there


@pytest.mark.parametrize("runs", [1, 200])
def test_freshness_is_one_query_however_many_runs(catalog, django_assert_num_queries, runs):
    SyncRun.objects.bulk_create(
        [SyncRun(scope="", status="succeeded", finished_at=timezone.now()) for _ in range(runs)]
    )
    with django_assert_num_queries(1):
        catalog_freshness()
    repository = Repository.objects.get(name="team-a/api")
    with django_assert_num_queries(1):
        repository_freshness(repository)


# -- issue 11: the banner never shows a recorded error to who may not read it ------------------

HIDDEN_LABEL_ERROR = (
    'null value in column "value" of relation "catalog_label" violates not-null constraint\n'
    "DETAIL:  Failing row contains (7, secret/vault, org.example.password, hunter2)."
)


def test_an_unreachable_registrys_address_is_not_shown_to_users(catalog, settings):
    run = failing_sync(settings)
    address = settings.REGISTRY_URL.removeprefix("http://")
    # The recorded error says where the registry is: the status page and the log keep it.
    run.errors.filter(repository="").update(message=f"HTTPConnectionPool(host={address!r})")
    SyncRun.objects.filter(pk=run.pk).update(error=f"Connection refused by {address}")
    for persona in ("public", "a_viewer", "b_admin", "superuser"):
        settings.REGISTRY_URL = "http://127.0.0.1:9"  # unchanged pages: no registry call
        html = catalog.client(persona).get("/" if persona != "public" else "/r/hello").content
        [banner, *_] = banners(html.decode())
        assert "The registry did not answer" in banner, persona
        assert address not in html.decode() and "HTTPConnectionPool" not in banner, persona
        assert ('href="/status/"' in banner) == (persona in ("b_admin", "superuser")), persona


def test_a_database_error_quoting_hidden_labels_stays_off_the_banner(catalog):
    SyncRun.objects.create(
        scope="", status="failed", finished_at=timezone.now(), error=HIDDEN_LABEL_ERROR
    )
    for persona in ("a_viewer", "b_admin", "superuser"):
        html = catalog.client(persona).get("/").content.decode()
        [banner] = banners(html)
        assert "The last sync did not finish" in banner, persona
        assert "hunter2" not in html and "org.example.password" not in banner, persona


def test_a_repositorys_error_is_for_staff_only(catalog, settings):
    failing_sync(settings, repository="team-a/api")
    error = Repository.objects.get(name="team-a/api").last_sync_error
    viewer = catalog.client("a_viewer").get("/r/team-a/api").content.decode()
    [banner] = banners(viewer)
    assert "The last sync of team-a/api failed" in banner
    assert error not in banner
    assert error in banners(catalog.client().get("/r/team-a/api").content.decode())[0]
