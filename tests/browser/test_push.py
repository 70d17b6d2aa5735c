"""Issue 14's acceptance: the push and pull commands read off the pages really work.

Chromium opens /push/ and the repository page as a team-A deleter (who may push to
``team-a/*``), types a local image, a tag and more tags into the form (htmx updates the
commands), reads each command off the page and runs it, exactly as shown, with ``skopeo``
against a real registry: the login, one copy per tag (skopeo's ``--all-tags``), the pulls.
The pushed tags then appear on the repository page after a sync. Once with a registry that
checks passwords itself (htpasswd; the interactive login runs in a pseudo-terminal), once in
token mode (the registry asks this app's /auth/token; the login is the "script or CI" form
with a personal access token made on /profile/tokens/).

The test registry speaks plain HTTP. A real deployment tells skopeo so in
/etc/containers/registries.conf (``insecure = true``); a test cannot edit that file, and this
skopeo build ignores ``CONTAINERS_REGISTRIES_CONF``, so ``skopeo`` on the commands' PATH is a
two-line wrapper adding ``--registries-conf`` with that one setting. The commands themselves
are run unchanged, through ``bash -c``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from registryui.catalog.models import Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.images import SKOPEO, ImageSpec, Layout, Platform, skopeo_copy
from registryui.devtools.registry import RegistryProcess
from registryui.sync.syncer import Syncer
from registryui.tokens.keys import write_key_pair
from tests.personas import PASSWORD, make_personas
from tests.tokens.support import ISSUER, SERVICE

from .support import TIMEOUT_MS, browser, screenshot  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The app's own account on the htpasswd registry (the sync reads with it).
APP_USER, APP_PASSWORD = "registryui", "pw-registryui-app"


@dataclass
class Shell:
    """Runs a command line as a user would, in a directory of its own."""

    cwd: Path
    env: dict[str, str]

    def run(self, command: str, *, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        return done.stdout

    def run_in_terminal(self, command: str, answer: str) -> str:
        """Run an interactive command in a pseudo-terminal; type ``answer`` at "Password:"."""
        master, slave = pty.openpty()
        process = subprocess.Popen(
            ["bash", "-c", command], stdin=slave, stdout=slave, stderr=slave,
            cwd=self.cwd, env=self.env,
        )  # fmt: skip
        os.close(slave)
        seen, answered = b"", False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"Password:" in seen:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif process.poll() is not None:
                break
        code = process.wait(timeout=30)
        os.close(master)
        text = seen.decode(errors="replace")
        assert answered and code == 0, f"{command}\n{text}"
        return text


@pytest.fixture(scope="module")
def token_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("push-token-keys")
    key, cert = folder / "key.pem", folder / "cert.pem"
    write_key_pair(key, cert, algorithm="ES256", common_name=ISSUER, days=3650)
    return key, cert


@pytest.fixture(params=["password", "token"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def push_registry(mode, tmp_path, live_server, settings, token_keys):
    if mode == "token":
        key, cert = token_keys
        settings.TOKEN_AUTH_ENABLED = True
        settings.TOKEN_ISSUER = ISSUER
        settings.TOKEN_SERVICE = SERVICE
        settings.TOKEN_KEY_FILE = str(key)
        settings.TOKEN_CERT_FILE = str(cert)
        options = {
            "token_auth": {
                "realm": f"{live_server.url}/auth/token",
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(cert),
            }
        }
    else:
        settings.TOKEN_AUTH_ENABLED = False
        settings.REGISTRY_USERNAME = APP_USER
        settings.REGISTRY_PASSWORD = APP_PASSWORD
        options = {"htpasswd": {"a-deleter": PASSWORD, APP_USER: APP_PASSWORD}}
    registry = RegistryProcess(tmp_path / "registry", **options).start()
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_PUBLIC_HOST = registry.host
    settings.REGISTRY_RETRIES = 1
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def shell(tmp_path, push_registry) -> Shell:
    work = tmp_path / "work"
    work.mkdir()
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{push_registry.host}"\ninsecure = true\n')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "skopeo"
    wrapper.write_text(f'#!/bin/sh\nexec {SKOPEO} --registries-conf {conf} "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
    }
    return Shell(work, env)


@pytest.fixture
def layout(tmp_path) -> Layout:
    layout = Layout(tmp_path / "layout")
    layout.add_image("one", ImageSpec(files={"one.txt": b"pushed from the page\n"}))
    layout.add_index(
        "multi",
        [
            ImageSpec(files={"m.txt": b"amd64\n"}, platform=Platform("linux", "amd64")),
            ImageSpec(files={"m.txt": b"arm64\n"}, platform=Platform("linux", "arm64", "v8")),
        ],
    )
    return layout


def open_as(browser, live_server, user, *, width: int = 1280):  # noqa: F811
    context = browser.new_context(
        viewport={"width": width, "height": 900}, base_url=live_server.url
    )
    context.set_default_timeout(TIMEOUT_MS)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    host = live_server.url.split("//", 1)[1].split(":", 1)[0]
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": cookie,
                "domain": host,
                "path": "/",
            }
        ]
    )
    return context


def command(page, key: str) -> str:
    """A command as the page shows it: its text (all of it) and its copy value agree."""
    element = page.locator(f"#cmd-{key}")
    text = element.get_attribute("data-command")
    assert " ".join(element.inner_text().split()) == text
    return text


def wait_for_command(page, key: str, fragment: str) -> str:
    page.wait_for_function(
        "([id, part]) => { const el = document.getElementById(id);"
        " return el && el.dataset.command.includes(part); }",
        arg=[f"cmd-{key}", fragment],
    )
    return command(page, key)


def sync() -> None:
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error


def personal_token(user) -> str:
    client = Client()
    client.force_login(user)
    page = client.post("/profile/tokens/", {"name": "laptop", "max_level": 20, "expires": "30"})
    return re.search(r"rui_pat_[A-Za-z0-9_-]+", page.content.decode()).group(0)


def test_the_commands_on_the_pages_push_and_pull_for_real(
    browser,  # noqa: F811
    live_server,
    transactional_db,
    mode,
    push_registry,
    shell,
    layout,
):
    personas = make_personas()
    deleter = personas["a_deleter"]
    deleter.apply_site_settings()
    host = push_registry.host
    context = open_as(browser, live_server, deleter.user)
    page = context.new_page()

    # /push/: the skopeo tab, then one image, a tag and two more tags typed once.
    page.goto("/push/")
    page.locator("#push-tool").select_option("skopeo")
    page.locator("#push-name").fill("team-a/pushed")
    page.locator("#push-source").fill(f"oci:{layout.path}:one")
    page.locator("#push-tag").fill("1.0")
    page.locator("#push-also").fill("latest beta")
    push = wait_for_command(page, "push-2", "team-a/pushed:beta")
    assert push == f"skopeo copy --all oci:{layout.path}:one docker://{host}/team-a/pushed:beta"
    commands = [command(page, "push"), command(page, "push-1"), push]
    assert commands[0].endswith(f"docker://{host}/team-a/pushed:1.0")

    # Log in as the page says.
    if mode == "token":
        login = command(page, "login-token")
        assert login == (
            f"printenv REGISTRY_TOKEN | skopeo login {host} --username a-deleter --password-stdin"
        )
        shell.run(login, env={"REGISTRY_TOKEN": personal_token(deleter.user)})
        assert "personal access token" in page.locator("#push-commands").inner_text()
    else:
        login = command(page, "login")
        assert login == f"skopeo login {host} --username a-deleter"
        assert page.locator("#cmd-login-token").count() == 0
        assert "Login Succeeded" in shell.run_in_terminal(login, PASSWORD)

    # Tag and push: one copy per tag, skopeo's --all-tags.
    for line in commands:
        shell.run(line)

    # The docker tab says the same with docker's own words.
    page.locator("#push-tool").select_option("docker")
    assert wait_for_command(page, "push-all", "--all-tags") == (
        f"docker image push --all-tags {host}/team-a/pushed"
    )
    assert (
        command(page, "tag-2")
        == f"docker image tag oci:{layout.path}:one {host}/team-a/pushed:beta"
    )

    # After a sync the pushed tags are on the repository page.
    sync()
    page.goto("/r/team-a/pushed")
    names = page.locator("table.tags .tag-name a").all_inner_texts()
    assert sorted(names) == ["1.0", "beta", "latest"]
    stored = Tag.objects.filter(repository__name="team-a/pushed").values_list("name", flat=True)
    assert set(stored) == {"1.0", "latest", "beta"}

    # Pull, from the panel's skopeo tab: one tag into an OCI layout, every tag into a folder each.
    assert page.locator("#push details").get_attribute("open") is None  # closed until used
    page.locator("#push summary").click()
    page.locator("#push-tool").select_option("skopeo")
    pull = wait_for_command(page, "pull-all-tags", "skopeo sync")
    assert pull == f"skopeo sync --src docker --dest dir {host}/team-a/pushed pushed-tags"
    one = command(page, "pull-repository")
    assert one == f"skopeo copy docker://{host}/team-a/pushed:latest oci:pushed:latest"
    shell.run(one)
    shell.run(pull)
    index = json.loads((shell.cwd / "pushed" / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "latest"
    ]
    synced = sorted(p.name for p in (shell.cwd / "pushed-tags").iterdir())
    assert synced == ["pushed:1.0", "pushed:beta", "pushed:latest"]
    page.locator("#push-tool").select_option("docker")
    assert wait_for_command(page, "pull-all-tags", "docker pull") == (
        f"docker pull --all-tags {host}/team-a/pushed"
    )
    context.close()


def _as_skopeo(docker_pull: str, destination: str) -> str:
    """``docker pull [--platform P] REF`` → the skopeo command that pulls the same image."""
    words = shlex.split(docker_pull)
    assert words[:2] == ["docker", "pull"]
    flags, reference = words[2:-1], words[-1]
    overrides = []
    if flags:
        assert flags[0] == "--platform" and len(flags) == 2
        names = ("--override-os", "--override-arch", "--override-variant")
        overrides = [f"{n} {v}" for n, v in zip(names, flags[1].split("/"), strict=False)]
    return f"skopeo copy {' '.join(overrides)} docker://{reference} oci:{destination}"


def test_every_platform_of_an_index_is_pulled_by_the_commands_of_its_tag_page(
    browser,  # noqa: F811
    live_server,
    transactional_db,
    push_registry,
    shell,
    layout,
    mode,
):
    """The ``--platform`` and per-platform digest pulls of a multi-arch tag page, run (as the
    skopeo commands that do what each docker command does) and checked by what arrived."""
    if mode == "token":
        pytest.skip("the push and pull of the token mode are the test above's")
    host = push_registry.host
    skopeo_copy(layout, "multi", f"{host}/team-a/multi:1", all_platforms=True,
                creds=f"a-deleter:{PASSWORD}")  # fmt: skip
    personas = make_personas()
    personas["a_viewer"].apply_site_settings()
    sync()
    shell.run(f"skopeo login {host} --username a-deleter --password-stdin <<< {PASSWORD}")
    context = open_as(browser, live_server, personas["a_viewer"].user, width=390)
    page = context.new_page()
    page.goto("/r/team-a/multi:1")
    shown = {
        el.get_attribute("id"): el.get_attribute("data-command")
        for el in page.locator("code.command").all()
    }
    platforms = {k: v for k, v in shown.items() if k.startswith("pull-platform-")}
    assert len(platforms) == 4, shown
    index_digest = shown["pull-digest"].rsplit("@", 1)[1]
    for key, line in sorted(platforms.items()):
        destination = f"out-{key}"
        shell.run(_as_skopeo(line, destination))
        pulled = json.loads((shell.cwd / destination / "index.json").read_text())["manifests"][0]
        manifest = json.loads(
            (
                shell.cwd / destination / "blobs" / "sha256" / pulled["digest"].split(":")[1]
            ).read_text()
        )
        config = json.loads(
            (
                shell.cwd
                / destination
                / "blobs"
                / "sha256"
                / manifest["config"]["digest"].split(":")[1]
            ).read_text()
        )
        if "--platform" in line:
            assert f"@{index_digest}" in line
            assert line.split()[3] == "/".join(
                p for p in (config["os"], config["architecture"], config.get("variant")) if p
            )
        else:
            assert line.endswith(f"@{pulled['digest']}")
    # Shown whole at 390 px: the digest is never cut, and the body does not scroll sideways.
    digest_box = page.locator("#pull-digest")
    assert digest_box.inner_text().replace("\n", "").endswith(index_digest.split(":")[1])
    screenshot(page, "push-index-tag-390-light")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_push_panel_and_the_push_page(site, scheme):
    """The panel and /push/ at 1280 and 390 px (test-artifacts/screenshots/push-*.png), with
    no sideways scroll of the page; the viewer's and the no-team user's /push/ as well."""
    shots = [
        ("a_deleter", "/r/team-a/api?also=beta+dev", "push-panel", "#push"),
        ("a_deleter", "/push/?name=team-a/weatherapi&source=weatherapi:1&also=latest+beta",
         "push-page", None),
        ("a_viewer", "/push/", "push-page-viewer", None),
        ("no_team", "/push/", "push-page-no-access", None),
        ("no_team", "/", "list-no-access", None),
    ]  # fmt: skip
    for width in (1280, 390):
        for persona, path, name, element in shots:
            context = site.context(color_scheme=scheme, persona=persona)
            page = context.new_page()
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, width, overflow)
            if element:
                page.locator(element).screenshot(
                    path=str(screenshot(page, f"{name}-{width}-{scheme}-page").with_name(
                        f"{name}-{width}-{scheme}.png"))
                )  # fmt: skip
            else:
                screenshot(page, f"{name}-{width}-{scheme}")
            context.close()
