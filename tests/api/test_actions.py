"""The API's actions against a registry of each test's own: what the registry and the
database hold afterwards, and the audit log, not just the status."""

from __future__ import annotations

import pytest

from registryui.catalog.models import Tag
from registryui.cleanup.models import RetentionPolicy
from registryui.core.models import AuditEntry
from registryui.teams.models import Level
from tests.support import WRITES

from .support import Bearer, assert_problem, personal_token, robot_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(lab):
    lab.image("one")
    lab.image("two")
    lab.push("one", "team-a/api:1.0")
    lab.push("one", "team-a/api:stable")
    lab.push("two", "team-a/api:2.0")
    lab.sync()
    return lab


def one_dot_oh(images) -> str:
    """The path deleting team-a/api:1.0 at the digest the test saw it at."""
    return f"/tags/team-a/api:1.0?digest={images.pushed['team-a/api:1.0']}"


def test_deleting_a_tag_keeps_its_siblings_and_is_audited(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    response = api.delete(one_dot_oh(images))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] and body["deleted_tags"] == ["1.0"] and body["deleted_digests"] == []
    assert images.registry_tags("team-a/api") == ["2.0", "stable"]
    assert images.digest("team-a/api:stable") == images.pushed["team-a/api:1.0"]
    assert set(images.tags("team-a/api")) == {"2.0", "stable"}
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE_TAG, reference="1.0")
    user = personas["a_deleter"].user
    assert (entry.via, entry.actor_name, entry.result) == ("api", user.username, "ok")
    assert entry.actor == user


def test_a_tag_that_moved_since_it_was_seen_is_left_alone(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    other = images.pushed["team-a/api:2.0"]
    body = assert_problem(api.delete(f"/tags/team-a/api:1.0?digest={other}"), 409, "changed")
    assert body["execution"]["outcomes"][0]["result"] == "changed"
    assert "1.0" in images.registry_tags("team-a/api")


def test_a_tag_delete_names_the_digest_it_saw(images, personas):
    """Without ``digest`` the delete would take whatever the tag points at by then: refused
    before the registry is asked, with what to send."""
    api = Bearer(personal_token(personas["a_deleter"].user))
    mark = images.registry.mark()
    body = assert_problem(api.delete("/tags/team-a/api:1.0"), 400, "digest_required")
    assert "Send the digest you saw" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["query.digest"]
    assert images.registry.requests_since(mark) == []
    assert images.registry_tags("team-a/api") == ["1.0", "2.0", "stable"]
    assert not AuditEntry.objects.filter(action="delete_tag").exists()


@pytest.mark.parametrize("synced", [False, True], ids=["push-unsynced", "push-synced"])
def test_a_tag_pushed_again_after_it_was_read_is_not_deleted(images, personas, synced):
    """The caller reads 1.0, then a push moves it to another image in the registry (and, when
    synced, in the database too, as a push notification would): the delete of what the caller
    saw is refused and the registry keeps 1.0 on the image pushed."""
    api = Bearer(personal_token(personas["a_deleter"].user))
    seen = api.get("/manifests/team-a/api:1.0").json()["digest"]
    assert seen == images.pushed["team-a/api:1.0"]
    pushed = images.push("two", "team-a/api:1.0")
    assert pushed != seen
    if synced:
        images.sync()

    body = assert_problem(api.delete(f"/tags/team-a/api:1.0?digest={seen}"), 409, "changed")

    [outcome] = body["execution"]["outcomes"]
    assert (outcome["reference"], outcome["result"]) == ("1.0", "changed")
    assert body["execution"]["deleted_tags"] == [] and "pushed again" in body["detail"]
    assert images.registry_tags("team-a/api") == ["1.0", "2.0", "stable"]
    assert images.digest("team-a/api:1.0") == pushed
    assert images.digest("team-a/api:stable") == seen
    entry = AuditEntry.objects.get(action="delete_tag", reference="1.0")
    assert (entry.result, entry.via, entry.details["now"]) == ("refused", "api", pushed)


def test_deleting_an_image_takes_every_tag_on_it(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    digest = images.pushed["team-a/api:1.0"]
    response = api.delete(f"/images/team-a/api@{digest}")
    assert response.status_code == 200, response.content
    assert response.json()["deleted_digests"] == [digest]
    assert images.registry_tags("team-a/api") == ["2.0"]
    assert images.digest("team-a/api:stable") is None
    assert AuditEntry.objects.filter(action="delete_image", via="api", digest=digest).exists()


def test_an_image_is_named_by_the_digest_seen_not_by_a_tag(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    mark = images.registry.mark()
    body = assert_problem(api.delete("/images/team-a/api:1.0"), 400, "digest_required")
    assert body["errors"] == [{"field": "path.reference", "message": "NAME@DIGEST."}]
    assert images.registry.requests_since(mark) == []
    assert images.registry_tags("team-a/api") == ["1.0", "2.0", "stable"]


def test_an_image_that_gained_a_tag_since_it_was_read_is_not_deleted(images, personas):
    """A push puts another tag on the image after the caller read it (the database does not
    know yet): the registry's own tags decide, and nothing is deleted."""
    api = Bearer(personal_token(personas["a_deleter"].user))
    digest = images.pushed["team-a/api:1.0"]
    images.push("one", "team-a/api:hotfix")

    body = assert_problem(api.delete(f"/images/team-a/api@{digest}"), 409, "changed")

    assert "gained the tag hotfix" in body["detail"]
    assert body["execution"]["deleted_digests"] == []
    assert images.registry_tags("team-a/api") == ["1.0", "2.0", "hotfix", "stable"]
    assert {images.digest(f"team-a/api:{t}") for t in ("1.0", "stable", "hotfix")} == {digest}


def test_adding_tags_and_moving_one_needs_its_old_digest(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    one, two = images.pushed["team-a/api:1.0"], images.pushed["team-a/api:2.0"]
    response = api.post("/manifests/team-a/api:2.0/-/tags", {"tags": ["latest", "v2"]})
    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()["results"]] == ["done", "done"]
    assert images.digest("team-a/api:latest") == two and images.digest("team-a/api:v2") == two

    # Moving "stable" (on 1.0's image) without its old digest: 409 with the current digest.
    body = assert_problem(
        api.post("/manifests/team-a/api:2.0/-/tags", {"tags": ["stable"]}),
        409,
        "confirmation_needed",
    )
    assert body["current_digests"] == {"stable": one}
    assert images.digest("team-a/api:stable") == one
    response = api.post(
        "/manifests/team-a/api:2.0/-/tags", {"tags": ["stable"], "old_digests": {"stable": one}}
    )
    assert response.status_code == 200, response.content
    assert response.json()["results"][0] == {
        "tag": "stable",
        "status": "moved",
        "message": response.json()["results"][0]["message"],
        "old_digest": one,
    }
    assert images.digest("team-a/api:stable") == two
    assert Tag.objects.get(repository__name="team-a/api", name="stable").manifest.digest == two
    assert AuditEntry.objects.filter(action="move_tag", via="api", reference="stable").exists()


def test_bulk_delete_dry_run_then_for_real(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    one = images.pushed["team-a/api:1.0"]
    payload = {"tags": [{"tag": "1.0", "digest": one}, {"tag": "stable", "digest": one}]}
    mark = images.registry.mark()
    plan = api.post("/repositories/team-a/api/-/bulk-delete", {**payload, "dry_run": True})
    assert plan.status_code == 200, plan.content
    assert plan.json()["images"] == [{"digest": one, "tags": ["1.0", "stable"], "children": []}]
    assert [x for x in images.registry.requests_since(mark) if x.method in WRITES] == []
    response = api.post("/repositories/team-a/api/-/bulk-delete", payload)
    assert response.status_code == 200, response.content
    assert images.registry_tags("team-a/api") == ["2.0"]
    assert AuditEntry.objects.filter(action="bulk_delete", via="api").count() == 1


def test_retention_preview_and_apply_with_its_fingerprint(images, personas):
    policy = RetentionPolicy.objects.create(
        name="keep-one", repository_pattern="team-a/*", keep_last=1, enabled=True
    )
    api = Bearer(personal_token(personas["a_deleter"].user))
    preview = api.get(f"/retention/policies/{policy.pk}/preview")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    going = {v["tag"] for r in body["repositories"] for v in r["verdicts"] if v["delete"]}
    assert going and body["tag_count"] == len(going)
    assert_problem(
        api.post(f"/retention/policies/{policy.pk}/apply", {"fingerprint": "0" * 32}),
        409,
        "preview_changed",
    )
    assert sorted(images.registry_tags("team-a/api")) == ["1.0", "2.0", "stable"]
    response = api.post(
        f"/retention/policies/{policy.pk}/apply", {"fingerprint": body["fingerprint"]}
    )
    assert response.status_code == 200, response.content
    assert response.json()["deleted_tags"] == len(going)
    assert not going & set(images.registry_tags("team-a/api"))
    assert AuditEntry.objects.filter(action="retention_run", via="api").exists()


def test_a_tokens_ceiling_applies(images, personas):
    """a_deleter may delete, but a pull-only token of theirs may not."""
    api = Bearer(personal_token(personas["a_deleter"].user, level=Level.VIEW))
    assert api.get("/repositories/team-a/api").status_code == 200
    assert_problem(api.delete(one_dot_oh(images)), 403, "forbidden")
    assert_problem(api.get("/retention/policies"), 403, "forbidden")
    assert "1.0" in images.registry_tags("team-a/api")


def test_a_robot_acts_within_its_grants_and_its_teams(images, personas):
    # team-a-ops holds delete on team-a/*; the robot only pull there: 403, and the other
    # team's repositories stay hidden whatever the robot's own grant says.
    secret = robot_secret("team-a-ops", [("team-a/*", Level.VIEW), ("team-b/*", Level.DELETE)])
    api = Bearer(secret)
    listed = api.get("/repositories").json()["items"]
    assert [r["name"] for r in listed] == ["team-a/api"]
    assert_problem(api.delete(one_dot_oh(images)), 403, "forbidden")
    deleter = Bearer(robot_secret("team-a-ops", [("team-a/*", Level.DELETE)], name="cleaner"))
    assert deleter.delete(one_dot_oh(images)).status_code == 200
    entry = AuditEntry.objects.get(action="delete_tag", reference="1.0")
    assert entry.actor_name == "robot$cleaner" and entry.actor is None


def test_the_session_needs_the_csrf_token_on_unsafe_methods(images, personas):
    client = personas["a_deleter"].client(enforce_csrf_checks=True)
    assert client.get("/api/v1/repositories").status_code == 200
    response = client.delete("/api/v1" + one_dot_oh(images))
    assert_problem(response, 403, "csrf_failed")
    assert "1.0" in images.registry_tags("team-a/api")
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.delete("/api/v1" + one_dot_oh(images), headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.content
    assert "1.0" not in images.registry_tags("team-a/api")


def test_bad_bearer_tokens_are_401_then_throttled(images, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert_problem(Bearer("rui_pat_wrong").get("/repositories"), 401, "invalid_token")
    body = assert_problem(Bearer("rui_pat_wrong").get("/repositories"), 429, "too_many_attempts")
    assert "try again" in body["detail"]
    assert AuditEntry.objects.filter(action="login_failed", via="api").count() == 3


def test_errors_are_problem_documents_naming_the_field(images, personas):
    api = Bearer(personal_token(personas["a_deleter"].user))
    body = assert_problem(api.get("/repositories", sort="colour"), 400, "invalid_field")
    assert [e["field"] for e in body["errors"]] == ["query.sort"]
    body = assert_problem(api.get("/repositories", limit="0"), 400, "invalid_field")
    assert body["errors"][0]["field"] == "query.limit"
    body = assert_problem(
        api.post("/repositories/team-a/api/-/bulk-delete", {"tags": [{"tag": "x"}]}),
        400,
        "invalid_field",
    )
    assert body["errors"][0]["field"] == "body.tags.0.digest"
    assert_problem(api.get("/manifests/Team-A/API:1.0"), 400, "bad_request")
    assert_problem(api.get("/manifests/team-a/nothing:1.0"), 404, "not_found")
    assert_problem(api.get("/nowhere"), 404, "not_found")
    response = api.client.put("/api/v1/repositories", headers=api.headers)
    assert_problem(response, 405, "method_not_allowed")
    assert_problem(Bearer().get("/repositories"), 401, "not_authenticated")
    assert_problem(api.get("/repositories", cursor="forged"), 400, "invalid_cursor")


def test_cursors_page_through_in_a_stable_order(lab, personas):
    from registryui.catalog.upstream import get_client
    from registryui.devtools.seed import Seeder

    Seeder(get_client()).seed([f"team-a/r{i:02d}" for i in range(7)], ["v1"])
    lab.sync()
    api = Bearer(personal_token(personas["superuser"].user))
    seen, cursor = [], None
    while True:
        params = {"limit": "3", "sort": "-name", **({"cursor": cursor} if cursor else {})}
        page = api.get("/repositories", **params).json()
        seen += [r["name"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A cursor of one sort is refused by another.
        assert_problem(api.get("/repositories", cursor=cursor), 400, "invalid_cursor")
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 7
