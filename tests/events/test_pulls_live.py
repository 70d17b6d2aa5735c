"""Issue 16's acceptance: a real registry 2.8 with both notification endpoints (pushes, and
pulls on their own queue) posting to the app under gunicorn. Pushes and pulls by skopeo; then
the UI shows push times, pull counts and last-pulled times matching what was done, the UI's own
sync adds no pull, and a retention rule on pulls keeps exactly the pulled images."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import pytest
import requests

from registryui.devtools.demo import notification_endpoint, pull_endpoint
from registryui.devtools.images import ImageSpec, Layout, skopeo_copy
from registryui.devtools.registry import RegistryProcess, free_port
from registryui.registry import RegistryClient

from .support import TOKEN, EventServer, django_state, manage, subprocess_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "pulls-acceptance-1"


def endpoint_metrics(debug_port: int, name: str) -> dict:
    data = requests.get(f"http://127.0.0.1:{debug_port}/debug/vars", timeout=5).json()
    endpoints = data["registry"]["notifications"]["endpoints"]
    return next(e for e in endpoints if e["name"] == name)["Metrics"]


def settle(debug_port: int) -> None:
    """Every event of both endpoints answered 2xx."""
    for name in ("registryui", "registryui-pulls"):
        wait_for(
            lambda name=name: (
                (m := endpoint_metrics(debug_port, name))["Pending"] == 0
                and m["Successes"] == m["Events"]
            ),
            timeout=60,
            what=f"the registry to deliver every event of {name}",
        )


def skopeo_pull(reference: str, target) -> None:
    """A real pull: skopeo GETs the manifest (by tag or digest), its config and layers."""
    done = subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{reference}", f"oci:{target}:x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def login(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/accounts/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{url}/accounts/login/",
        data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{url}/accounts/login/"},
        timeout=10,
    )
    assert answer.ok and "Log out" in answer.text
    return session


def fact(html: str, css_class: str) -> str:
    """The text of ``<div class="css_class"><dt>…</dt><dd>TEXT</dd>`` on a tag page."""
    found = re.search(
        rf'<div class="{css_class}[^"]*"><dt>[^<]*</dt><dd[^>]*>(.*?)</dd>', html, re.S
    )
    assert found, f"no {css_class} fact"
    return found.group(1)


def test_push_times_pull_counts_and_pull_retention_on_the_real_registry(tmp_path, worker_database):
    layout = Layout(tmp_path / "layout")
    for name in ("old", "a", "b", "c"):
        layout.add_image(name, ImageSpec(files={f"{name}.txt": name.encode() * 50}))
    root = tmp_path / "registry"

    # Before Registry UI was installed: an image pushed to a registry without notifications.
    with RegistryProcess(root) as before:
        skopeo_copy(layout, "old", f"{before.host}/team-a/app:old")

    debug_port = free_port()
    registry = RegistryProcess(
        root, extra_config={"http": {"debug": {"addr": f"127.0.0.1:{debug_port}"}}}
    )
    env = subprocess_env(
        worker_database,
        registry.url,
        PULL_TRACKING="true",
        # Pages render {% static %}: no collectstatic manifest here.
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    server = EventServer(env, tmp_path / "gunicorn.log", workers=2)
    try:
        server.start()
        ui_host = server.url.removeprefix("http://")
        registry.notifications = [
            notification_endpoint(ui_host, TOKEN),
            pull_endpoint(ui_host, TOKEN),
        ]
        registry.start()
        django_state(
            env,
            "from django.contrib.auth.models import User\n"
            f"User.objects.create_superuser('admin', 'admin@example.com', '{PASSWORD}')\n"
            "result = 1",
        )
        assert manage("sync_registry", env=env).returncode == 0  # the first sync
        first_sync = datetime.now(UTC)

        pushed_from = datetime.now(UTC)
        for name, tag in (("a", "1.0"), ("b", "2.0"), ("c", "3.0")):
            skopeo_copy(layout, name, f"{registry.host}/team-a/app:{tag}")
        pushed_until = datetime.now(UTC)
        session = login(server.url)
        wait_for(
            lambda: session.get(f"{server.url}/r/team-a/app:3.0", timeout=10).ok,
            what="the pushed tags in the UI",
        )
        with RegistryClient(registry.url) as client:
            digests = {
                t: client.head_manifest("team-a/app", t).digest
                for t in ("1.0", "2.0", "3.0", "old")
            }

        # Pulls: 1.0 twice by tag, 2.0's image once by digest (as docker and containerd do).
        skopeo_pull(f"{registry.host}/team-a/app:1.0", tmp_path / "pull1")
        skopeo_pull(f"{registry.host}/team-a/app:1.0", tmp_path / "pull2")
        skopeo_pull(f"{registry.host}/team-a/app@{digests['2.0']}", tmp_path / "pull3")
        pulled_until = datetime.now(UTC)
        settle(debug_port)
        # The UI's own sync after the pulls: HEADs of every tag, which are no pulls.
        assert manage("sync_registry", env=env).returncode == 0
        settle(debug_port)

        tracking = django_state(
            env,
            "from registryui.events.models import PullTracking\n"
            "t = PullTracking.load()\n"
            "result = dict(counted=t.counted, own=t.own, checks=t.checks)",
        )
        assert tracking["counted"] == 3
        assert tracking["own"] >= 4 + 4  # the second sync's HEAD of each tag, at least

        pages = {
            tag: session.get(f"{server.url}/r/team-a/app:{tag}", timeout=10).text
            for tag in ("1.0", "2.0", "3.0", "old")
        }
        assert 'data-pulls="2"' in pages["1.0"] and "(2 by this tag)" in pages["1.0"]
        assert 'data-pulls="1"' in pages["2.0"] and "by this tag" not in fact(pages["2.0"], "pulls")
        assert 'data-pulls="0"' in pages["3.0"] and 'data-pulls="0"' in pages["old"]
        for tag in ("1.0", "2.0"):
            last = re.search(r'<time datetime="([^"]+)"', fact(pages[tag], "last-pulled")).group(1)
            assert pushed_until <= datetime.fromisoformat(last) <= pulled_until
        assert fact(pages["3.0"], "last-pulled").startswith("never since ")
        for tag in ("1.0", "2.0", "3.0"):
            pushed = re.search(r'<time datetime="([^"]+)"', fact(pages[tag], "pushed")).group(1)
            assert (
                pushed_from.replace(microsecond=0) <= datetime.fromisoformat(pushed) <= pushed_until
            )
        # The image that was there before: no made-up push time.
        assert f"before {first_sync:%Y-%m-%d}" in fact(pages["old"], "pushed")
        assert "<time" not in fact(pages["old"], "pushed")

        repository = session.get(
            f"{server.url}/r/team-a/app", params={"sort": "pushed"}, timeout=10
        ).text
        assert 'data-total="3"' in repository  # the sparkline's 30 days
        order = re.findall(
            r'<th scope="row" class="tag-name"><a href="[^"]+">([^<]+)</a>', repository
        )
        assert order == ["old", "1.0", "2.0", "3.0"]

        # The stale images view: never pulled, whatever the push time.
        stale = session.get(f"{server.url}/stale/", params={"pulled": 7, "pushed": 0}, timeout=10)
        assert set(re.findall(r'<tr data-digest="([^"]+)"', stale.text)) == {
            digests["3.0"],
            digests["old"],
        }

        # Retention on pulls keeps exactly the pulled images.
        policy = django_state(
            env,
            "from registryui.cleanup.models import RetentionPolicy\n"
            "p = RetentionPolicy.objects.create(name='pulled', repository_pattern='team-a/*',"
            " keep_last=0, keep_pulled=5, enabled=True)\n"
            "result = p.pk",
        )
        preview = session.get(f"{server.url}/retention/{policy}/", timeout=10).text
        going = set(re.findall(r'<tr class="delete" data-tag="([^"]+)"', preview))
        kept = set(re.findall(r'<tr class="keep" data-tag="([^"]+)"', preview))
        assert (going, kept) == ({"3.0", "old"}, {"1.0", "2.0"})
        assert "one of the 5 most recently pulled images (last pulled" in preview
        fingerprint = re.search(r'name="fingerprint" value="([^"]+)"', preview).group(1)
        csrf = session.cookies["csrftoken"]
        applied = session.post(
            f"{server.url}/retention/{policy}/apply",
            data={"fingerprint": fingerprint, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{server.url}/retention/{policy}/"},
            timeout=60,
        )
        assert applied.ok, applied.text[:500]
        with RegistryClient(registry.url) as client:
            assert sorted(client.list_tags("team-a/app")) == ["1.0", "2.0"]
    finally:
        registry.stop()
        server.stop()
