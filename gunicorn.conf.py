"""gunicorn settings for Registry UI: ``gunicorn -c gunicorn.conf.py registryui.wsgi``.

Every value can be changed from the environment (documented in .env.example); command-line
flags still win over this file.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from registryui.core.logging import logging_config


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer.") from None


def available_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may really use: its affinity mask and its cgroup's CPU quota.

    ``os.cpu_count()`` counts the host's CPUs, which overstates a container limited with
    ``--cpus`` or a Kubernetes CPU limit.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no limit) or "200000 100000" (two CPUs)
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


# All interfaces of the container; publish the port on the host's loopback (docker-compose.yml).
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# gunicorn's rule of thumb, 2 x CPUs + 1, capped: a large host should not start dozens of
# ~70 MB processes, each holding database connections. WEB_CONCURRENCY overrides it.
workers = _env_int("WEB_CONCURRENCY", min(2 * available_cpus() + 1, 12))
# Threads let a worker keep serving while one request waits on the registry (a delete, the
# status page's live check).
worker_class = "gthread"
threads = _env_int("GUNICORN_THREADS", 4)
# A worker silent for this long is restarted. Longer than a registry call may take
# (REGISTRY_READ_TIMEOUT is 30 s), so a slow upstream gives an error page, not a killed worker.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Seconds an idle keep-alive connection from the proxy stays open for the next request.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then, so that slow memory growth never adds up.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
# Load Django once in the master: workers fork ready (less memory), and a configuration error
# (e.g. the refused default SECRET_KEY) stops start-up with one clear message instead of
# workers failing to boot in a loop.
preload_app = True
# No runtime control socket (gunicorn 25.1+): it defaults to one path per user
# (~/.gunicorn/gunicorn.ctl), which several servers on one machine would fight over, and a
# container is managed from outside anyway.
control_socket_disable = True

# Proxies allowed to set X-Forwarded-Proto (gunicorn's own default reads the same variable;
# Django's TrustedProxyMiddleware uses it too). Behind a proxy on another host, list its
# address; "*" only where nothing but the proxy can reach this port.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs: access and errors to stdout, as JSON lines (LOG_FORMAT=plain for a terminal).
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'
logconfig_dict = logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO"), fmt=os.environ.get("LOG_FORMAT", "json")
)

# The heartbeat files of workers on a memory file system: on a container's overlay file
# system a slow disk can make gunicorn think a busy worker is dead.
# gunicorn creates private, randomly named files there: not the shared-/tmp risk S108 means.
SHM = "/dev/shm"  # noqa: S108
if Path(SHM).is_dir():
    worker_tmp_dir = SHM

# /metrics (registryui/ops/metrics.py): each worker process writes its request-latency samples
# to files in one directory, and whichever worker answers a scrape adds them all up. A fresh
# directory per server start (on the memory file system when there is one), so no figures of
# processes from an earlier start are counted; set PROMETHEUS_MULTIPROC_DIR to choose it.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="registryui-metrics-", dir=SHM if Path(SHM).is_dir() else None
    )
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def child_exit(server, worker) -> None:
    """A worker's samples stay counted; its live gauges go (prometheus-client's rule)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)


def on_exit(server) -> None:
    if Path(_METRICS_DIR).name.startswith("registryui-metrics-"):
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
