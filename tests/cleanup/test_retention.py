"""Retention policies: the dry run lists exactly what apply removes, tags that share an image
with a kept tag survive, and the bytes predicted are the bytes garbage-collect gives back."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.cleanup import retention
from registryui.cleanup.actions import Actor
from registryui.cleanup.models import RetentionPolicy
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from tests.cleanup.support import audit, manipulating_requests

pytestmark = pytest.mark.django_db

#: tag → (layout image, age in days). Image "a" has v1.0.0 (kept by name) and build-1 (kept
#: by sharing); "b" has two candidates; "c" is also in team-a/other; "e" has latest.
APP = {
    "v1.0.0": ("a", 100),
    "build-1": ("a", 100),
    "build-2": ("b", 90),
    "build-2-alias": ("b", 90),
    "build-3": ("c", 80),
    "build-4": ("d", 5),
    "latest": ("e", 60),
    "build-5": ("e", 60),
}
EXPECTED_DELETIONS = {
    "team-a/app": {"build-2", "build-2-alias", "build-3", "multi-1", "multi-1-amd64"},
    "team-a/other": {"old"},
    "team-a/stable-multi": set(),  # old-amd64 is kept: a platform of the kept index
}


@pytest.fixture
def scenario(world):
    for name in "abcdef":
        world.image(name, size=2000 + ord(name))
    world.index("multi", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    for tag, (image, _) in APP.items():
        world.push(image, f"team-a/app:{tag}")
    world.push("multi", "team-a/app:multi-1", all_platforms=True)
    world.push("multi", "team-a/app:multi-1-amd64")  # the amd64 platform, tagged directly
    world.push("c", "team-a/other:old")  # image c lives in two repositories
    world.push("f", "team-a/other:new")
    world.push("b", "team-b/keep:b")  # outside the pattern: b's blobs must stay
    world.push("multi", "team-a/stable-multi:stable", all_platforms=True)
    world.push("multi", "team-a/stable-multi:old-amd64")
    world.sync()
    now = timezone.now()
    ages = {("team-a/app", t): age for t, (_, age) in APP.items()}
    ages.update(
        {
            ("team-a/app", "multi-1"): 70,
            ("team-a/app", "multi-1-amd64"): 70,
            ("team-a/other", "old"): 100,
            ("team-a/other", "new"): 1,
            ("team-b/keep", "b"): 100,
            ("team-a/stable-multi", "stable"): 1,
            ("team-a/stable-multi", "old-amd64"): 300,
        }
    )
    for (repo, tag), age in ages.items():
        Tag.objects.filter(repository__name=repo, name=tag).update(
            changed_at=now - timedelta(days=age), first_seen=now - timedelta(days=age)
        )
    RetentionPolicy.objects.create(
        name="nightly",
        repository_pattern="team-a/*",
        keep_last=1,
        older_than_days=30,
        keep_regex=r"^(latest|v\d+\.\d+\.\d+)$",
        enabled=True,
    )
    return world


def dry_run(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_retention", "--dry-run", *args, stdout=out)
    return out.getvalue()


def listed_deletions(output: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    repo = ""
    for line in output.splitlines():
        if line.startswith("  ") and not line.startswith("    "):
            repo = line.strip().split(":")[0]
        elif line.strip().startswith("- delete "):
            found.setdefault(repo, set()).add(line.strip().split()[2])
    return found


def test_the_dry_run_lists_exactly_what_apply_removes(scenario):
    before_tags = {
        r: set(scenario.registry_tags(r))
        for r in ("team-a/app", "team-a/other", "team-b/keep", "team-a/stable-multi")
    }
    mark = scenario.registry.mark()
    output = dry_run("--verbose-keep")
    assert manipulating_requests(scenario.registry.requests_since(mark)) == []
    planned = listed_deletions(output)
    assert planned == {r: t for r, t in EXPECTED_DELETIONS.items() if t}
    # Kept by sharing: named with the reason, and never deleted.
    assert "= keep build-1: shares its image with kept tag v1.0.0" in output
    assert "= keep build-5: one of the 1 most" not in output
    assert "= keep build-5: shares its image with kept tag latest" in output
    assert "= keep old-amd64: its image is a platform of kept index stable" in output
    predicted = int(output.split(" bytes) to reclaim")[0].rsplit("(", 1)[1])
    before_bytes = scenario.registry.blob_bytes()

    out = io.StringIO()
    call_command("apply_retention", stdout=out)

    for repo, tags in before_tags.items():
        remaining = set(scenario.registry_tags(repo))
        assert tags - remaining == planned.get(repo, set()), repo
        assert set(scenario.tags(repo)) == remaining  # the database agrees at once
    for tag in ("build-1", "build-5", "v1.0.0", "latest", "build-4"):
        assert scenario.digest(f"team-a/app:{tag}") == scenario.pushed[f"team-a/app:{tag}"]
    assert scenario.digest("team-b/keep:b") == scenario.pushed["team-b/keep:b"]
    assert scenario.digest("team-a/stable-multi:old-amd64") is not None
    [run] = audit("retention_run")
    assert (run.via, run.actor_name, run.result) == ("policy", "policy:nightly", "ok")
    assert {r: set(t) for r, t in run.details["deleted"].items() if t} == planned
    assert run.details["freed_bytes"] == predicted
    steps = audit("delete_image")
    assert steps and {(e.via, e.details["policy"]) for e in steps} == {("policy", "nightly")}
    assert audit("delete_tag") == []  # retention deletes whole images only

    assert before_bytes - scenario.blob_bytes_after_gc() == predicted


def test_a_tag_added_to_a_planned_image_before_apply_keeps_it(scenario, personas):
    client = personas["a_deleter"].client()
    policy = RetentionPolicy.objects.get()
    page = client.get(f"/retention/{policy.pk}/").content.decode()
    fingerprint = page.split('name="fingerprint" value="')[1].split('"')[0]
    scenario.push("c", "team-a/app:hotfix")  # the registry only: the plan is unchanged

    response = client.post(
        f"/retention/{policy.pk}/apply", {"fingerprint": fingerprint}, follow=True
    )

    assert response.status_code == 200, response.content.decode()
    assert scenario.digest("team-a/app:hotfix") == scenario.pushed["team-a/app:build-3"]
    assert scenario.digest("team-a/app:build-3") == scenario.pushed["team-a/app:build-3"]
    assert scenario.digest("team-a/app:build-2") is None
    [run] = audit("retention_run")
    assert run.via == "ui" and run.actor_name == "a-deleter"
    assert "build-3" in run.details["kept_at_run_time"]["team-a/app"]


def test_the_preview_page_shows_reasons_and_only_what_the_user_may_delete(scenario, personas):
    policy = RetentionPolicy.objects.get()
    page = personas["a_deleter"].client().get(f"/retention/{policy.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-tag="build-2"' in html and "team-b/keep" not in html
    assert "keep: matches ^(latest|v\\d+\\.\\d+\\.\\d+)$" in html
    assert "keep: shares its image with kept tag v1.0.0" in html
    assert "changed less than 30 days ago" in html
    assert '<dd class="tag-count">6</dd>' in html
    assert "garbage-collect" in html and "--delete-untagged" in html
    assert personas["a_viewer"].client().get(f"/retention/{policy.pk}/").status_code == 403
    assert personas["a_viewer"].client().get("/retention/").status_code == 403
    listing = personas["a_deleter"].client().get("/retention/").content.decode()
    assert "nightly" in listing and "matches 3 repositories you may delete in" in listing
    # b_admin may delete in team-b/* only: a policy on team-a/* is not theirs to see.
    b_admin = personas["b_admin"].client()
    assert b_admin.get(f"/retention/{policy.pk}/").status_code == 404
    assert (
        b_admin.post(f"/retention/{policy.pk}/apply", {"fingerprint": "x"}, follow=True).status_code
        == 404
    )
    assert "nightly" not in b_admin.get("/retention/").content.decode()
    everything = personas["superuser"].client().get(f"/retention/{policy.pk}/").content.decode()
    assert "team-b/keep" not in everything and 'data-tag="build-2"' in everything


def test_apply_from_the_ui_refuses_a_stale_preview_and_a_switched_off_policy(scenario, personas):
    client = personas["a_deleter"].client()
    policy = RetentionPolicy.objects.get()
    mark = scenario.registry.mark()
    stale = client.post(f"/retention/{policy.pk}/apply", {"fingerprint": "0" * 32}, follow=True)
    assert stale.status_code == 409
    assert "changed since your preview" in stale.content.decode()
    assert 'name="fingerprint"' in stale.content.decode()
    assert client.get(f"/retention/{policy.pk}/apply").status_code == 405
    RetentionPolicy.objects.update(enabled=False)
    page = client.get(f"/retention/{policy.pk}/").content.decode()
    fingerprint = page.split("fingerprint")[0]  # no form for a switched-off policy
    assert 'name="fingerprint"' not in page and fingerprint
    off = client.post(f"/retention/{policy.pk}/apply", {"fingerprint": "x"}, follow=True)
    assert off.status_code == 409 and "switched off" in off.content.decode()
    assert (
        personas["a_viewer"]
        .client()
        .post(f"/retention/{policy.pk}/apply", {"fingerprint": "x"}, follow=True)
        .status_code
        == 403
    )
    assert manipulating_requests(scenario.registry.requests_since(mark)) == []
    assert audit() == []


def test_the_command_refuses_unknown_and_switched_off_policies(scenario):
    with pytest.raises(CommandError, match="No retention policy named 'nope'") as unknown:
        call_command("apply_retention", "--policy", "nope")
    assert unknown.value.returncode == 2
    RetentionPolicy.objects.update(enabled=False)
    with pytest.raises(CommandError, match="switched off") as off:
        call_command("apply_retention", "--policy", "nightly")
    assert off.value.returncode == 2
    assert "build-2" in dry_run("--policy", "nightly")  # previewing it is fine
    assert "No retention policy is switched on." in dry_run()


def test_bytes_are_estimated_per_repository_only_when_shown(world):
    """Each estimate reads every manifest sharing a blob with the deleted ones (here: all of
    them, as with a common base image). The dry run of the command and a real run estimate
    their whole batch once; only the preview page asks for each repository's share."""
    with RegistryClient(world.registry.url, retries=0) as client:
        seeder = Seeder(client)
        seeder.seed(["small/a", "small/b"], ["1", "2", "3"])
        seeder.seed([f"large/r{i}" for i in range(6)], ["1", "2", "3"])
    world.sync()

    def queries(pattern: str) -> tuple[int, int, retention.PolicyPreview]:
        policy = RetentionPolicy.objects.create(name=pattern, repository_pattern=pattern)
        policy.keep_last = 1
        with CaptureQueriesContext(connection) as previewing:
            planned = retention.preview(policy)
        with CaptureQueriesContext(connection) as applying:
            result = retention.apply(policy, planned, Actor(name="t", via="policy"))
        assert not result.failures and result.deleted_tags == 2 * len(planned.repositories)
        return len(previewing), len(applying), planned

    small_preview, small_apply, _ = queries("small/*")
    large_preview, large_apply, planned = queries("large/*")

    # Per repository: its tags, its manifests and index links, its plan's rows; no estimate.
    assert large_preview - small_preview <= 4 * 5
    # Per repository also its deletions' audit entries, one write of what it removed, and the
    # rewrite of its blob links (catalog.storage.link_blobs, for the storage page) and the
    # lookup of what is attached to its deleted images (issue 17).
    assert large_apply - small_apply <= 4 * 28
    assert planned.repositories[0].freed.bytes > 0  # still there for the preview page


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"keep_last": 0, "older_than_days": None}, "would delete every tag"),
        ({"keep_regex": "(unclosed"}, "not a regular expression"),
        ({"repository_pattern": "Team A/*"}, "not a repository pattern"),
    ],
)
def test_policy_validation(db, fields, error):
    policy = RetentionPolicy(**{"name": "p", "repository_pattern": "team-a/*", **fields})
    with pytest.raises(ValidationError, match=error):
        policy.full_clean()


def test_the_admin_edits_policies_and_links_to_the_dry_run(db, personas):
    client = personas["superuser"].client()
    assert client.get("/admin/cleanup/retentionpolicy/add/").status_code == 200
    refused = client.post(
        "/admin/cleanup/retentionpolicy/add/",
        {
            "name": "all",
            "repository_pattern": "*",
            "keep_last": "0",
            "older_than_days": "",
            "keep_regex": "",
            "enabled": "on",
            "description": "",
        },
    )
    assert refused.status_code == 200
    assert "This policy would delete every tag" in refused.content.decode()
    created = client.post(
        "/admin/cleanup/retentionpolicy/add/",
        {
            "name": "weekly",
            "repository_pattern": "team-a/*",
            "keep_last": "5",
            "older_than_days": "30",
            "keep_regex": "^latest$",
            "enabled": "on",
            "description": "",
        },
    )
    assert created.status_code == 302
    policy = RetentionPolicy.objects.get(name="weekly")
    assert policy.enabled is False  # switched on only from its dry run
    listing = client.get("/admin/cleanup/retentionpolicy/").content.decode()
    assert f'href="/retention/{policy.pk}/"' in listing


def test_the_policy_list_needs_a_delete_grant_somewhere_not_repositories(db, personas):
    RetentionPolicy.objects.create(name="nightly", repository_pattern="team-a/*")
    page = personas["superuser"].client().get("/retention/")  # nothing synced yet
    assert page.status_code == 200 and "nightly" in page.content.decode()
    assert personas["a_deleter"].client().get("/retention/").status_code == 200
    assert personas["no_team"].client().get("/retention/").status_code == 403
    assert personas["anonymous"].client().get("/retention/").status_code == 302
