"""/push/ and the repository page's push panel, for each persona of tests/personas.py:
who sees push commands, who sees pull commands and whom to ask, who is told they have no
access; and that no hidden repository is ever named (issue 14)."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from registryui.teams.models import SiteSettings
from tests.support import PUBLIC_HOST

HOST = PUBLIC_HOST
#: Every sample repository; what each persona may see is in tests/personas.py.
ALL = {"hello", "platform/tools/builder", "team-a/api", "team-a/web", "team-b/worker"}
VISIBLE = {
    "public": {"hello"},
    "no_team": set(),
    "a_viewer": {"hello", "team-a/api", "team-a/web"},
    "a_deleter": {"hello", "team-a/api", "team-a/web"},
    "b_admin": {"team-b/worker", "platform/tools/builder"},
    "superuser": ALL,
}


def main(response) -> str:
    text = response.content.decode()
    return html_lib.unescape(text.split("<main", 1)[1].split("</main>", 1)[0])


def commands(html: str) -> dict[str, str]:
    """id → command of every copyable command on the page."""
    return {
        m.group(1): html_lib.unescape(m.group(2))
        for m in re.finditer(r'<code class="command" id="([^"]+)" data-command="([^"]*)"', html)
    }


def page_commands(response) -> dict[str, str]:
    return commands(response.content.decode())


def hidden_named(html: str, persona: str) -> set[str]:
    """Sample repositories the page names although the persona may not see them (the list's
    filter placeholder, "e.g. team-a/api", is an example, not a repository)."""
    html = re.sub(r'placeholder="[^"]*"', "", html)
    return {
        name for name in ALL - VISIBLE[persona] if re.search(rf"(?<![\w/-]){name}(?![\w/-])", html)
    }


def test_a_deleter_gets_every_push_command_on_push_page(catalog):
    response = catalog.client("a_deleter").get(
        "/push/",
        {"name": "team-a/new", "source": "weatherapi:1", "tag": "1", "also": "latest beta"},
    )
    assert response.status_code == 200
    got = page_commands(response)
    assert got["cmd-login"] == f"docker login {HOST} --username a-deleter"
    assert got["cmd-tag"] == f"docker image tag weatherapi:1 {HOST}/team-a/new:1"
    assert got["cmd-push"] == f"docker image push {HOST}/team-a/new:1"
    assert got["cmd-tag-1"] == f"docker image tag weatherapi:1 {HOST}/team-a/new:latest"
    assert got["cmd-tag-2"] == f"docker image tag weatherapi:1 {HOST}/team-a/new:beta"
    assert got["cmd-push-all"] == f"docker image push --all-tags {HOST}/team-a/new"
    # A new repository has no tags: its pull names the tag typed above.
    assert got["cmd-pull-repository"] == f"docker pull {HOST}/team-a/new:1"
    assert got["cmd-pull-all-tags"] == f"docker pull --all-tags {HOST}/team-a/new"
    html = main(response)
    # The targets come from the grants: team-a/* → team-a/<name>; exact "hello" is view only.
    assert "team-a/<name>" in html
    assert "Where you may push" in html
    assert hidden_named(html, "a_deleter") == set()


def test_a_deleter_without_parameters_starts_with_a_name_in_their_namespace(catalog):
    response = catalog.client("a_deleter").get("/push/")
    got = page_commands(response)
    assert got["cmd-tag"] == f"docker image tag myapp {HOST}/team-a/myapp:latest"


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        (
            "podman",
            {
                "cmd-tag": "podman image tag app:2 {h}/team-a/x:2",
                "cmd-push": "podman image push {h}/team-a/x:2",
                "cmd-push-1": "podman image push {h}/team-a/x:dev",
            },
        ),
        (
            "nerdctl",
            {
                "cmd-push": "nerdctl image push {h}/team-a/x:2",
                "cmd-push-1": "nerdctl image push {h}/team-a/x:dev",
            },
        ),
        (
            "skopeo",
            {
                "cmd-push": "skopeo copy --all docker-daemon:app:2 docker://{h}/team-a/x:2",
                "cmd-push-1": "skopeo copy --all docker-daemon:app:2 docker://{h}/team-a/x:dev",
                "cmd-login": "skopeo login {h} --username a-deleter",
                "cmd-pull-all-tags": "skopeo sync --src docker --dest dir {h}/team-a/x x-tags",
            },
        ),
        (
            "crane",
            {
                "cmd-push": "crane push x.tar {h}/team-a/x:2",
                "cmd-push-all": "oras tag {h}/team-a/x:2 dev",
                "cmd-push-1": "crane tag {h}/team-a/x:2 dev",
            },
        ),
    ],
)
def test_each_tool_has_its_own_commands(catalog, tool, expected):
    response = catalog.client("a_deleter").get(
        "/push/", {"name": "team-a/x", "source": "app:2", "tag": "2", "also": "dev", "tool": tool}
    )
    got = page_commands(response)
    for key, command in expected.items():
        assert got[key] == command.format(h=HOST), key
    if tool in ("podman", "nerdctl"):
        assert "--all-tags" not in got.get("cmd-push-all", "")
        assert f"{tool} has no push --all-tags" in main(response)


def test_typing_with_htmx_swaps_the_commands_alone(catalog):
    response = catalog.client("a_deleter").get(
        "/push/",
        {"name": "team-a/api", "source": "local/api:dev", "tag": "9"},
        headers={"HX-Request": "true"},
    )
    text = response.content.decode()
    assert "<html" not in text and "<form" not in text
    assert commands(text)["cmd-tag"] == f"docker image tag local/api:dev {HOST}/team-a/api:9"
    # An existing repository's pull names its "latest".
    assert commands(text)["cmd-pull-repository"] == f"docker pull {HOST}/team-a/api:latest"
    assert "HX-Request" in response["Vary"]


def test_a_source_is_quoted_for_the_shell_and_bad_input_is_said(catalog):
    client = catalog.client("a_deleter")
    quoted = page_commands(client.get("/push/", {"name": "team-a/x", "source": "a$(id)"}))
    assert quoted["cmd-tag"] == f"docker image tag 'a$(id)' {HOST}/team-a/x:latest"
    response = client.get("/push/", {"name": "Team-A/X", "tag": "-bad", "also": "ok .no"})
    assert response.status_code == 200
    html = main(response)
    assert "A repository name is lowercase" in html
    assert "A tag is up to 128" in html
    assert "Not a tag: .no." in html


def test_a_viewer_sees_pull_commands_and_whom_to_ask(catalog):
    response = catalog.client("a_viewer").get("/push/")
    html = main(response)
    got = page_commands(response)
    assert "cmd-tag" not in got and "cmd-push" not in got and "cmd-login" not in got
    # The first repository they see; its "latest".
    assert got["cmd-pull-repository"] == f"docker pull {HOST}/hello:latest"
    assert "You may pull, but not push anywhere" in html
    # team-a has no admin: nobody administers a pattern covering theirs but the superuser.
    assert re.search(r'ask <strong class="contact">superuser</strong> for the push', html)
    assert hidden_named(html, "a_viewer") == set()


def test_a_viewer_of_a_team_with_an_admin_is_told_that_admins_name(catalog):
    from django.contrib.auth import get_user_model

    from registryui.teams.models import Level, Team

    team_a = Team.objects.get(name="team-a")
    boss = get_user_model().objects.create_user("team-a-boss")
    boss_team = Team.objects.create(name="team-a-admins", slug="team-a-admins")
    boss_team.grants.create(pattern="team-a/*", level=Level.ADMIN)
    boss_team.members.add(boss)
    html = main(catalog.client("a_viewer").get("/push/"))
    assert '<strong class="contact">team-a-boss</strong>' in html
    # Own team's admins come first: once team-a administers something, its other member
    # (a_deleter) is named instead, on the panel of a repository the viewer cannot push to.
    team_a.grants.create(pattern="team-a/sandbox", level=Level.ADMIN)
    html = main(catalog.client("a_viewer").get("/r/team-a/api"))
    assert "but not push to it" in html
    assert '<strong class="contact">a-deleter</strong>' in html
    assert "team-a-boss" not in html


def test_the_panel_shows_push_commands_only_to_who_may_push(catalog):
    pusher = page_commands(catalog.client("a_deleter").get("/r/team-a/api"))
    assert pusher["cmd-tag"] == f"docker image tag api {HOST}/team-a/api:latest"
    assert pusher["cmd-pull-all-tags"] == f"docker pull --all-tags {HOST}/team-a/api"
    viewer = catalog.client("a_viewer").get("/r/team-a/api")
    got = page_commands(viewer)
    assert set(got) == {"cmd-pull-repository", "cmd-pull-all-tags"}
    assert got["cmd-pull-repository"] == f"docker pull {HOST}/team-a/api:latest"
    assert "but not push to it" in main(viewer)
    # The GET form (no JavaScript) drives the panel too.
    typed = page_commands(
        catalog.client("b_admin").get(
            "/r/team-b/worker", {"source": "w:3", "tag": "v3", "tool": "podman"}
        )
    )
    assert typed["cmd-tag"] == f"podman image tag w:3 {HOST}/team-b/worker:v3"
    # No "latest" in team-b/worker: its newest tag.
    assert typed["cmd-pull-repository"] == f"podman pull {HOST}/team-b/worker:v2"


def test_the_public_visitor_pulls_and_is_asked_to_log_in(catalog):
    response = catalog.client("public").get("/push/")
    html = main(response)
    got = page_commands(response)
    assert got == {
        "cmd-pull-repository": f"docker pull {HOST}/hello:latest",
        "cmd-pull-all-tags": f"docker pull --all-tags {HOST}/hello",
    }
    assert "Log in</a> to push" in html
    assert hidden_named(html, "public") == set()
    panel = page_commands(catalog.client("public").get("/r/hello"))
    assert "cmd-tag" not in panel and "cmd-login" not in panel


def test_a_user_in_no_team_is_told_they_have_no_access(catalog):
    client = catalog.client("no_team")
    listing = main(client.get("/"))
    assert "No repositories yet" not in listing
    assert "You have no access to any repository of this registry yet." in listing
    assert '<strong class="contact">superuser</strong>' in listing
    push = main(client.get("/push/"))
    assert "You have no access to any repository of this registry yet." in push
    assert commands(push) == {}
    assert hidden_named(listing + push, "no_team") == set()
    # A name typed in the URL gets nothing either.
    typed = main(client.get("/push/", {"name": "team-a/api"}))
    assert commands(typed) == {}


def test_a_viewer_of_an_empty_namespace_is_not_told_the_registry_is_empty(catalog):
    client = catalog.client("no_team")
    site = SiteSettings.load()
    site.no_team_patterns = "nothing-here/*"
    site.save()
    listing = main(client.get("/"))
    assert "No repository you may see yet." in listing
    assert "No repositories yet" not in listing


def test_anonymous_visitors_go_to_the_login_page(catalog):
    response = catalog.client("anonymous").get("/push/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["public", "a_viewer", "a_deleter", "b_admin", "superuser"])
def test_no_page_of_the_guide_names_a_hidden_repository(catalog, persona):
    client = catalog.client(persona)
    pages = [client.get("/push/"), client.get("/push/", {"tool": "skopeo"})]
    pages += [client.get(f"/r/{name}") for name in sorted(VISIBLE[persona])]
    for response in pages:
        assert response.status_code == 200
        assert hidden_named(main(response), persona) == set()


def test_the_navigation_links_to_push(catalog):
    html = catalog.client("a_viewer").get("/").content.decode()
    assert '<a href="/push/">Push and pull</a>' in html
