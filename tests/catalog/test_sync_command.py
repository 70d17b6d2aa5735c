"""``manage.py sync_registry``: progress on a terminal, the one-line summary, the exit status,
and a real process stopped by SIGTERM."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from registryui.catalog.models import SyncRun
from registryui.devtools.faults import FaultProxy
from registryui.devtools.seed import Seeder
from registryui.registry import RegistryClient
from registryui.sync.management.commands.sync_registry import ProgressLine
from registryui.sync.syncer import Progress

BASE_DIR = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def seeded(registry, settings):
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_RETRIES = 0
    with RegistryClient(registry.url) as client:
        Seeder(client).seed([f"team-a/app-{i}" for i in range(5)], ["1", "2", "3"])
    return registry


@pytest.mark.django_db
def test_a_terminal_sees_progress_then_the_summary(seeded, monkeypatch):
    monkeypatch.setattr(ProgressLine, "INTERVAL", 0)  # every update, for the test
    out = Terminal()
    call_command("sync_registry", stdout=out)
    text = out.getvalue()
    updates = [part for part in text.split("\r\x1b[K") if part.startswith("repositories")]
    assert updates, text
    assert updates[-1].startswith("repositories 5/5  tags 15  new manifests 15  requests 36")
    assert text.endswith(
        "\r\x1b[K" + "sync succeeded: 5/5 repositories, 15 tags (+15 ~0 -0), "
        # 36 for the repositories, then the daily referrers-API probe (issue 17): 37.
        "0 repositories removed, 15 new manifests, 37 requests, 0 failed, "
        + text.rsplit("0 failed, ", 1)[1]
    )


@pytest.mark.django_db
def test_without_a_terminal_only_the_summary_is_written(seeded):
    out = io.StringIO()
    call_command("sync_registry", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sync succeeded: 5/5 repositories, 15 tags (+15 ~0 -0), ")
    assert "\x1b" not in out.getvalue()


@pytest.mark.django_db
def test_a_failure_prints_the_summary_and_the_errors_and_exits_non_zero(seeded):
    """One repository answers 503 (FaultProxy; a real registry will not fail one on demand)."""
    with FaultProxy(seeded.url) as proxy:
        proxy.fail(503, path="^/v2/team-a/app-3/tags/list")
        from django.test import override_settings

        with override_settings(REGISTRY_URL=proxy.url):
            out, err = io.StringIO(), io.StringIO()
            with pytest.raises(SystemExit) as exited:
                call_command("sync_registry", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert out.getvalue().startswith("sync failed: 4/5 repositories, 12 tags (+12 ~0 -0), ")
    assert ", 1 failed, " in out.getvalue()
    assert err.getvalue() == "  team-a/app-3: The registry is unavailable. [UNAVAILABLE]\n"
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_progress_lines_are_throttled():
    out = Terminal()
    from django.core.management.base import OutputWrapper

    line = ProgressLine(OutputWrapper(out))
    for done in range(100):
        line(Progress(repositories_total=100, repositories_done=done))
    # A hundred updates within a moment draw one line, not a hundred.
    assert out.getvalue().count("repositories ") < 5


def test_sigterm_stops_a_running_sync_cleanly(seeded, tmp_path):
    """A real ``manage.py sync_registry`` process: SIGTERM ends the run as "interrupted",
    recorded, with exit status 1 and nothing removed. The registry is slowed down by a
    FaultProxy so that the signal arrives mid-run."""

    def slow(method, path, headers, body):
        time.sleep(0.2)
        return None  # then forward to the real registry

    with FaultProxy(seeded.url) as proxy:
        proxy.route(slow)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REGISTRY_URL": proxy.url,
            "SECRET_KEY": "sigterm-test-" + "x" * 40,
            "LOG_FORMAT": "plain",
            "LOG_LEVEL": "ERROR",
        }
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, timeout=120)
        sync = subprocess.Popen(
            [*manage, "sync_registry", "--concurrency", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("/manifests/" in r.path for r in proxy.seen):
            time.sleep(0.05)
        sync.send_signal(signal.SIGTERM)
        out, err = sync.communicate(timeout=60)
    assert sync.returncode == 1, err
    assert "sync failed" in out
    assert "Interrupted before the end; nothing was removed." in out
    check = (
        "from registryui.catalog.models import SyncRun; r = SyncRun.objects.get(); "
        "print(r.status, r.finished_at is not None, r.repositories_removed)"
    )
    shell = subprocess.run(
        [*manage, "shell", "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    assert shell.stdout.strip().splitlines()[-1] == "failed True 0", shell.stderr
