"""``make demo`` end to end: the real registry, the sample images, the UI under gunicorn and the
sync worker come up; a login sees the sample repositories; SIGINT (Ctrl-C) stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from registryui.devtools.registry import free_port

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited early with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.25)
    raise AssertionError(f"the demo did not serve {url} within {timeout}s")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        match = re.search(r"^PPid:\s+(\d+)$", text, re.M)
        if match and int(match.group(1)) == pid:
            child = int(status.parent.name)
            found |= {child} | _children(child)
    return found


def test_make_demo_serves_the_sample_repositories_and_ctrl_c_stops_everything(tmp_path):
    registry_port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEMO_REGISTRY_PORT": str(registry_port),
        "DEMO_BIND": f"127.0.0.1:{ui_port}",
        "DEMO_VAR_DIR": str(tmp_path / "demo"),
    }
    for name in ("DATABASE_URL", "SECRET_KEY", "REGISTRY_URL", "REGISTRY_PUBLIC_HOST"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "registryui.devtools.demo"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{ui_port}"
    try:
        _wait_for(f"{base}/healthz", process)
        descendants = _children(process.pid)
        assert descendants, "the demo started no processes"

        session = requests.Session()
        login = session.get(f"{base}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        session.post(
            f"{base}/accounts/login/",
            data={
                "username": "admin",
                "password": "registryui-demo",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        )
        page = session.get(f"{base}/", timeout=10)
        assert page.status_code == 200
        for name in ("team-a/api", "team-a/web", "team-b/worker", "platform/tools/builder"):
            assert f'href="/r/{name}"' in page.text, name
        # The registry the demo started holds the same images.
        catalog = requests.get(f"http://127.0.0.1:{registry_port}/v2/_catalog", timeout=5)
        assert "platform/tools/builder" in catalog.json()["repositories"]
    finally:
        process.send_signal(signal.SIGINT)
        # Generous: a loaded machine (two suites side by side) took over 60 s to stop the
        # sample pushes, the worker and the registry; what is asserted is that it stops.
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "Stopped the UI, the sync worker and the registry." in output
    time.sleep(0.5)
    alive = [pid for pid in descendants if Path(f"/proc/{pid}").exists()]
    assert not alive, f"processes left running after Ctrl-C: {alive}"
