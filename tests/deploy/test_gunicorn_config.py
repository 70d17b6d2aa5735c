"""gunicorn.conf.py: workers from the CPUs really available, values from the environment, and
a configuration gunicorn itself accepts."""

from __future__ import annotations

import os
import runpy
import subprocess

import pytest

from .support import BASE_DIR, app_env

CONFIG = str(BASE_DIR / "gunicorn.conf.py")


def load(monkeypatch, **env: str) -> dict:
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONFIG)


def test_workers_follow_the_cpus(monkeypatch):
    config = load(monkeypatch)
    cpus = config["available_cpus"]()
    assert 1 <= cpus <= len(os.sched_getaffinity(0))
    assert config["workers"] == min(2 * cpus + 1, 12)
    assert load(monkeypatch, WEB_CONCURRENCY="3")["workers"] == 3


def test_a_cgroup_cpu_quota_limits_the_count(monkeypatch, tmp_path):
    available_cpus = load(monkeypatch)["available_cpus"]
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")  # docker run --cpus 1.5
    assert available_cpus(limit) == min(2, len(os.sched_getaffinity(0)))
    limit.write_text("max 100000\n")
    assert available_cpus(limit) == len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_values_come_from_the_environment(monkeypatch):
    config = load(monkeypatch, GUNICORN_THREADS="8", GUNICORN_TIMEOUT="90",
                  FORWARDED_ALLOW_IPS="10.0.0.0/8")  # fmt: skip
    assert (config["threads"], config["timeout"]) == (8, 90)
    assert config["forwarded_allow_ips"] == "10.0.0.0/8"
    assert config["accesslog"] == config["errorlog"] == "-"
    assert config["preload_app"] is True
    assert config["logconfig_dict"]["formatters"]["default"]["()"].endswith("JsonFormatter")
    with pytest.raises(SystemExit, match="GUNICORN_TIMEOUT='soon' is not an integer"):
        load(monkeypatch, GUNICORN_TIMEOUT="soon")


def test_gunicorn_accepts_the_configuration():
    done = subprocess.run(
        [str(BASE_DIR / ".venv/bin/gunicorn"), "--config", CONFIG, "--print-config",
         "registryui.wsgi"],
        cwd=BASE_DIR,
        env=app_env(WEB_CONCURRENCY="3", FORWARDED_ALLOW_IPS="10.0.0.0/8,127.0.0.1"),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = dict(
        (part.strip() for part in line.split("=", 1))
        for line in done.stdout.splitlines()
        if "=" in line
    )
    assert printed["workers"] == "3"
    assert printed["worker_class"] == "gthread"
    assert printed["forwarded_allow_ips"] == "['10.0.0.0/8', '127.0.0.1']"
    assert printed["control_socket_disable"] == "True"
