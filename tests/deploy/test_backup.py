"""deploy/backup.sh and deploy/restore.sh: what can be checked without a container engine. The
compose test (deploy/ci/compose_test.py) runs both for real against the stack, with a restore
drill into a fresh one."""

from __future__ import annotations

import os
import subprocess

from .support import BASE_DIR


def test_the_project_name_defaults_to_composes_from_the_folder(tmp_path):
    folder = tmp_path / "My Registry.UI_2"
    folder.mkdir()
    code = '. "$1"; printf "%s %s" "$engine" "$project"'
    script = str(BASE_DIR / "deploy/stack-containers.sh")
    done = subprocess.run(
        ["sh", "-c", code, "sh", script], cwd=folder, capture_output=True, text=True, env={}
    )
    assert done.stdout == "docker myregistryui_2"
    named = subprocess.run(
        ["sh", "-c", code, "sh", script],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"COMPOSE_PROJECT_NAME": "prod", "CONTAINER_ENGINE": "podman"},
    )
    assert named.stdout == "podman prod"


def test_restore_refuses_an_incomplete_backup_before_touching_anything(tmp_path):
    (tmp_path / "registryui.dump").write_bytes(b"PGDMP")
    done = subprocess.run(
        ["sh", str(BASE_DIR / "deploy/restore.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        # An engine that does not exist: the script must stop before it would call one.
        env={"PATH": os.environ["PATH"], "CONTAINER_ENGINE": "/nonexistent/docker"},
    )
    assert done.returncode == 1
    assert f"{tmp_path}/registry-data.tar is missing or empty" in done.stderr
