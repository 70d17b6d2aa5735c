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


def _describe(pids: set[int]) -> list[str]:
    found = []
    for pid in sorted(pids):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found.append(f"{pid}: {cmdline[:160]}")
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
    descendants: set[int] = set()
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
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired as timeout:
            # Say what was still running (and still held the output pipe), then clean up.
            stuck = _children(process.pid) | descendants | {process.pid}
            alive = _describe(stuck)
            for pid in stuck:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            output, _ = process.communicate(timeout=30)
            raise AssertionError(
                f"make demo did not stop within 60 s of Ctrl-C; still running: {alive}\n{output}"
            ) from timeout
    assert process.returncode == 0, output
    assert "Stopped the UI, the sync worker and the registry." in output
    time.sleep(0.5)
    alive = [pid for pid in descendants if Path(f"/proc/{pid}").exists()]
    assert not alive, f"processes left running after Ctrl-C: {alive}"
