"""Sync, pages and lineage of what is attached to images, against a real registry."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from registryui.catalog.models import Manifest, SbomPackage, SyncRun
from registryui.catalog.upstream import get_client
from registryui.devtools.artifacts import Attacher
from registryui.lib.reference import reference_url
from tests.attach.support import push_and_sync
from tests.events.support import TOKEN, post_events, push_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushed(use_registry):
    return push_and_sync()


def test_sync_records_subject_kinds_and_packages(pushed):
    signed = pushed["team-a/signed:1.0"]
    sig = Manifest.objects.get(digest=pushed["team-a/signed:sig"])
    assert sig.attached_kinds == {"signature": 2}
    att = Manifest.objects.get(digest=pushed["team-a/signed:att"])
    assert att.attached_kinds == {"sbom": 1, "provenance": 1}
    assert att.details["provenance"]["builder"].startswith("https://github.com/slsa-framework/")
    assert att.details["provenance"]["source"].startswith("git+https://github.com/example/signed")
    assert att.details["provenance"]["parameters"] == {
        "event_name": "push",
        "ref": "refs/heads/main",
    }
    names = list(SbomPackage.objects.filter(manifest=att).values_list("name", flat=True))
    assert names[0] == "openssl" and len(names) == 5
    first = SbomPackage.objects.get(manifest=att, position=0)
    assert (first.version, first.licence) == ("3.0.15-1~deb12u1", "Apache-2.0")
    assert first.purl == "pkg:deb/debian/openssl@3.0.15-1~deb12u1"
    sbom = Manifest.objects.get(digest=pushed["team-a/signed:sbom"])
    assert sbom.details["sbom"]["format"] == "cyclonedx"
    assert SbomPackage.objects.filter(manifest=sbom).count() == 3
    scan = Manifest.objects.get(digest=pushed["team-a/signed:scan"])
    assert scan.subject_digest == signed
    assert scan.artifact_type == "application/vnd.example.scan-report+json"
    # Pushed by digest only: registry 2.8 has no referrers API, so it stays unknown.
    assert not Manifest.objects.filter(digest=pushed["team-a/signed@notation"]).exists()
    assert SyncRun.objects.latest().referrers_api == SyncRun.ReferrersApi.UNSUPPORTED
    chart = Manifest.objects.get(digest=pushed["team-a/charts/app:0.3.1"])
    assert chart.details["config"]["name"] == "app"
    assert chart.details["config"]["appVersion"] == "2.0"


def test_tag_list_hides_attachment_tags_and_shows_badges(pushed, personas):
    client = personas["a_viewer"].client()
    page = client.get(reference_url("team-a/signed")).content.decode()
    assert "4 signature/attestation tags hidden" in page
    assert ".sig</a>" not in page and "scan-report" not in page
    tbody = re.search(
        rf'<tbody class="image[^"]*" data-digest="{pushed["team-a/signed:1.0"]}">(.*?)</tbody>',
        page,
        re.S,
    ).group(1)
    kinds = re.findall(r'data-kind="(\w+)">([^<]*)(?:<span class="count">\u00d7(\d+))?', tbody)
    assert [(k, n) for k, _, n in kinds] == [
        ("signature", "2"),
        ("sbom", "2"),
        ("provenance", ""),
        ("artifact", ""),
    ]
    unsigned = re.search(
        rf'data-digest="{pushed["team-a/signed:2.0"]}">(.*?)</tbody>', page, re.S
    ).group(1)
    assert "data-kind" not in unsigned
    shown = client.get(reference_url("team-a/signed") + "?attached=shown").content.decode()
    assert ".sig</a>" in shown and "scan-report" in shown and "Hide them" in shown
    assert client.get(reference_url("team-a/signed") + "?attached=bogus").status_code == 400


def test_digest_page_lists_attached_with_certificate_identity(pushed, personas):
    client = personas["a_viewer"].client()
    page = client.get(reference_url("team-a/signed", tag="1.0")).content.decode()
    section = page[page.index('id="attached"') :]
    assert "release@example.com" in section
    assert "https://github.com/example/signed/.github/workflows/release.yml" in section
    assert "https://token.actions.githubusercontent.com" in section
    assert "https://spdx.dev/Document" in section
    assert "vnd.example.scan-report+json" in section
    for key in ("sig", "att", "sbom", "scan"):
        assert reference_url("team-a/signed", digest=pushed[f"team-a/signed:{key}"]) in section
    assert "does not answer the referrers API" in section
    # A referrer's own page says what it is attached to, and shows its contents.
    att = client.get(
        reference_url("team-a/signed", digest=pushed["team-a/signed:att"])
    ).content.decode()
    assert (
        "Attached to" in att
        and reference_url("team-a/signed", digest=pushed["team-a/signed:1.0"]) in att
    )
    assert "Provenance" in att and "slsa-github-generator" in att and "event_name" in att


def test_sbom_table_filters_and_downloads(pushed, personas):
    client = personas["a_viewer"].client()
    url = reference_url("team-a/signed", digest=pushed["team-a/signed:att"], action="sbom")
    page = client.get(url).content.decode()
    assert "5 packages" in page and "zlib1g" in page and "pkg:deb/debian/openssl@" in page
    filtered = client.get(url + "?q=ssl", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in filtered and "openssl" in filtered and "zlib1g" not in filtered
    download = client.get(url + ".json")
    assert download.status_code == 200
    assert b'"spdxVersion": "SPDX-2.3"' in download.content
    assert "attachment" in download["Content-Disposition"]
    no_sbom = reference_url("team-a/signed", digest=pushed["team-a/signed:sig"], action="sbom")
    assert client.get(no_sbom).status_code == 404


def test_referrers_of_hidden_repositories_stay_hidden(pushed, personas):
    client = personas["a_viewer"].client()
    sig = pushed["team-b/app:sig"]
    assert client.get(reference_url("team-b/app", digest=sig)).status_code == 404
    base = client.get(reference_url("team-a/base", tag="bookworm")).content.decode()
    # team-b/app is built on the base too, but a team-A viewer may not see it.
    assert "team-a/signed:1.0" in base and "team-b/app" not in base
    admin = personas["superuser"].client().get(reference_url("team-a/base", tag="bookworm"))
    assert "team-b/app:1" in admin.content.decode()


def test_lineage_built_on(pushed, personas):
    page = personas["a_viewer"].client().get(reference_url("team-a/signed", tag="1.0"))
    section = page.content.decode().split('id="lineage"')[1]
    assert "Built on" in section and "team-a/base:bookworm" in section


def test_helm_chart_and_files_show_their_contents(pushed, personas):
    client = personas["a_viewer"].client()
    chart = client.get(reference_url("team-a/charts/app", tag="0.3.1")).content.decode()
    assert "Contents: Helm chart" in chart
    assert re.search(r"<dt>App version</dt><dd>2.0</dd>", chart)
    assert "unknown platform" not in chart
    files = client.get(reference_url("team-a/files", tag="v1")).content.decode()
    assert "settings.yaml" in files and "README.md" in files


def test_a_notification_links_a_new_signature(pushed, personas, settings):
    """A signature pushed after the sync shows up through the registry's notification alone:
    the handler stores the manifest (its kinds parsed) and the tag, and the graph follows."""
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    image = pushed["team-a/signed:2.0"]
    sig = Attacher(get_client()).cosign_sign("team-a/signed", image)
    tag = "sha256-" + image.removeprefix("sha256:") + ".sig"
    response = post_events(Client(), push_event("team-a/signed", tag, sig))
    assert response.status_code == 200, response.content
    assert Manifest.objects.get(digest=sig).attached_kinds == {"signature": 1}
    page = personas["a_viewer"].client().get(reference_url("team-a/signed")).content.decode()
    assert "5 signature/attestation tags hidden" in page
    row = page.split(f'data-digest="{image}"')[1].split("</tbody>")[0]
    assert 'data-kind="signature">Signed' in row
