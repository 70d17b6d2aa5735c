"""The command builders of ``registryui.browse.commands``: each tool's words, quoting, and
what a tool lacks (the pages and the browser test read these very strings)."""

from __future__ import annotations

import shlex

import pytest

from registryui.browse import commands
from registryui.browse.commands import Tool

HOST = "registry.example.com"


@pytest.fixture(autouse=True)
def _host(settings):
    settings.REGISTRY_PUBLIC_HOST = HOST


def test_pull_command_keeps_its_old_form():
    assert commands.pull_command("team-a/api") == f"docker pull {HOST}/team-a/api"
    assert commands.pull_command("team-a/api", ":1.4") == f"docker pull {HOST}/team-a/api:1.4"


def test_a_plain_local_name_is_a_docker_daemon_image_for_skopeo():
    assert commands.skopeo_source("api") == "docker-daemon:api:latest"
    assert commands.skopeo_source("me/api:dev") == "docker-daemon:me/api:dev"
    assert commands.skopeo_source("localhost:5000/api") == "docker-daemon:localhost:5000/api:latest"
    assert commands.skopeo_source("oci:/tmp/layout:one") == "oci:/tmp/layout:one"
    assert commands.skopeo_source("containers-storage:api") == "containers-storage:api"


def test_the_user_s_text_is_quoted_for_the_shell():
    steps = commands.push_steps(Tool.DOCKER, "team-a/api", "1", "x; rm -rf ~")
    tag = steps[0].commands[0].text
    assert shlex.split(tag) == ["docker", "image", "tag", "x; rm -rf ~", f"{HOST}/team-a/api:1"]
    login = commands.login_step(Tool.PODMAN, "robot$ci", token_mode=False).commands
    assert [c.text for c in login] == [f"podman login {HOST} --username 'robot$ci'"]


def test_the_token_form_reads_the_token_from_stdin():
    login = commands.login_step(Tool.DOCKER, "alice", token_mode=True).commands
    assert login[1].text == (
        f"printenv REGISTRY_TOKEN | docker login {HOST} --username alice --password-stdin"
    )
    # crane has no interactive login: only the stdin form.
    crane = commands.login_step(Tool.CRANE, "alice", token_mode=False).commands
    assert [c.id for c in crane] == ["login-token"]


def test_several_tags_skip_the_main_tag_and_repeats():
    steps = commands.push_steps(Tool.SKOPEO, "a/b", "1", "img:1", ["1", "latest", "latest"])
    assert [c.text for c in steps[1].commands] == [
        f"skopeo copy --all docker-daemon:img:1 docker://{HOST}/a/b:latest"
    ]


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        (Tool.DOCKER, f"docker pull --platform linux/arm64/v8 {HOST}/a/b@sha256:1"),
        (Tool.PODMAN, f"podman pull --platform linux/arm64/v8 {HOST}/a/b@sha256:1"),
        (
            Tool.SKOPEO,
            "skopeo copy --override-os linux --override-arch arm64 --override-variant v8 "
            f"docker://{HOST}/a/b@sha256:1 oci:b:linux-arm64-v8",
        ),
        (Tool.CRANE, f"crane pull --platform linux/arm64/v8 {HOST}/a/b@sha256:1 b.tar"),
    ],
)
def test_a_platform_of_an_index_is_pulled_by_the_index_digest(tool, expected):
    assert commands.pull_platform(tool, "a/b", "sha256:1", "linux/arm64/v8") == expected


def test_all_tags_where_the_tool_has_it_and_a_note_where_not():
    assert commands.pull_all_tags(Tool.PODMAN, "a/b").text == f"podman pull --all-tags {HOST}/a/b"
    nerdctl = commands.pull_all_tags(Tool.NERDCTL, "a/b")
    assert nerdctl.text == "" and "no all-tags pull" in nerdctl.note


def test_manifest_commands_list_each_platform_twice():
    got = commands.manifest_commands(
        "a/b", "sha256:i", "1", [("linux/amd64", "sha256:x"), ("", "sha256:y")]
    )
    assert [(c.id, c.text) for c in got] == [
        ("pull-tag", f"docker pull {HOST}/a/b:1"),
        ("pull-digest", f"docker pull {HOST}/a/b@sha256:i"),
        ("pull-platform-1", f"docker pull --platform linux/amd64 {HOST}/a/b@sha256:i"),
        ("pull-platform-digest-1", f"docker pull {HOST}/a/b@sha256:x"),
    ]
