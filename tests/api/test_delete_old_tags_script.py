"""docs/examples/delete-old-tags.py, run as a CI job would: a separate process that talks
HTTP to the app (pytest-django's live server) in front of a real registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from registryui.catalog.models import Tag
from registryui.core.models import AuditEntry

from .support import personal_token

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "delete-old-tags.py"


def run(live_server, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), live_server.url, "team-a/api", *args],
        env={"REGISTRYUI_TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def seen_long_ago(lab, *old: str) -> None:
    """team-a/api: the tags ``old`` on the image "old", first seen 90 days ago; 2026.12 on
    the image "new", seen now. Synced."""
    lab.image("old")
    lab.image("new")
    for tag in old:
        lab.push("old", f"team-a/api:{tag}")
    lab.push("new", "team-a/api:2026.12")
    lab.sync()
    Tag.objects.filter(name__in=old).update(first_seen=timezone.now() - timedelta(days=90))


@pytest.mark.django_db(transaction=True)
def test_it_deletes_tags_older_than_n_days(lab, live_server, personas):
    seen_long_ago(lab, "2024.1", "stable")
    token = personal_token(personas["a_deleter"].user)

    dry = run(live_server, token, "--days", "30", "--keep", "stable")
    assert dry.returncode == 0, dry.stderr
    assert "would delete team-a/api:2024.1" in dry.stdout and "stable" not in dry.stdout
    assert lab.registry_tags("team-a/api") == ["2024.1", "2026.12", "stable"]

    done = run(live_server, token, "--days", "30", "--keep", "stable", "--apply")
    assert done.returncode == 0, done.stderr
    assert "deleted 1 tag(s): 2024.1" in done.stdout
    assert lab.registry_tags("team-a/api") == ["2026.12", "stable"]
    assert AuditEntry.objects.filter(action="bulk_delete", via="api").exists()

    refused = run(live_server, personal_token(personas["a_viewer"].user), "--days", "0", "--apply")
    assert refused.returncode == 1 and "403 forbidden" in refused.stderr


@pytest.mark.django_db(transaction=True)
def test_a_tag_pushed_again_since_it_was_listed_is_left_alone(lab, live_server, personas):
    """2024.2 is pushed again in the registry after the UI synced it: the script lists it at
    the digest it saw, the API finds it elsewhere and leaves it alone; the rest goes."""
    seen_long_ago(lab, "2024.1", "2024.2")
    pushed = lab.push("new", "team-a/api:2024.2")

    done = run(live_server, personal_token(personas["a_deleter"].user), "--days", "30", "--apply")

    assert done.returncode == 0, done.stderr
    assert "deleted 1 tag(s): 2024.1" in done.stdout
    assert "left alone, pushed again since they were listed: 2024.2" in done.stdout
    assert lab.registry_tags("team-a/api") == ["2024.2", "2026.12"]
    assert lab.digest("team-a/api:2024.2") == pushed
