"""``/metrics``: who may read it, what it says after a real sync, and a real Prometheus
(Debian's ``prometheus``) scraping the app under gunicorn with a bearer token."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from registryui.catalog.models import Tag
from registryui.catalog.upstream import get_client
from registryui.devtools.registry import free_port
from registryui.devtools.seed import Seeder
from registryui.events.models import PullTracking
from registryui.ops import health, metrics
from registryui.registry import RegistryClient
from registryui.sync.syncer import Syncer
from tests.accounts.support import start_app
from tests.deploy.support import BASE_DIR
from tests.events.support import V1, push_event

TOKEN = "metrics-token-3b9d51"
EVENTS_TOKEN = "events-token-77e1c0"

#: What an operator's dashboards and alerts rely on (docs/grafana-dashboard.json uses them).
EXPECTED = {
    "registryui_http_request_duration_seconds_bucket",
    "registryui_http_request_duration_seconds_count",
    "registryui_registry_up",
    "registryui_registry_latency_seconds",
    "registryui_repositories",
    "registryui_tags",
    "registryui_manifests",
    "registryui_stored_bytes",
    "registryui_sync_running",
    "registryui_sync_last_success_timestamp_seconds",
    "registryui_sync_last_run_info",
    "registryui_sync_last_run_duration_seconds",
    "registryui_sync_last_run_requests",
    "registryui_sync_runs_recorded",
    "registryui_sync_workers_alive",
    "registryui_notification_events_total",
    "registryui_notification_received_total",
    "registryui_notification_lag_seconds",
    "registryui_webhook_deliveries",
    "registryui_webhook_oldest_pending_age_seconds",
}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((BASE_DIR / "docs" / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(autouse=True)
def _fresh_figures():
    health.reset()
    metrics.forget()
    yield
    health.reset()
    metrics.forget()


@pytest.mark.django_db
def test_only_the_token_or_an_allowed_network_may_read_it(settings):
    settings.METRICS_TOKEN = TOKEN
    outside = Client(REMOTE_ADDR="10.9.8.7")
    refused = outside.get("/metrics")
    assert refused.status_code == 403
    assert "METRICS_TOKEN" in refused.content.decode()
    assert "registryui_" not in refused.content.decode()
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = outside.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200
    assert allowed["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    # This host is allowed by default (METRICS_ALLOWED_NETWORKS), a wrong token never is.
    assert Client().get("/metrics").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics").status_code == 403
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db
def test_the_figures_follow_a_real_sync(use_registry, personas):
    with RegistryClient(use_registry.url, retries=0) as client:
        Seeder(client).seed(["team-a/api", "team-b/app"], ["1", "2", "3"])
    run = Syncer(get_client(), concurrency=2).run()
    assert run.ok, run.error
    personas["superuser"].client().get("/")

    text = Client().get("/metrics").content.decode()
    values = samples(text)

    assert values[("registryui_tags", ())] == Tag.objects.count() == 6
    assert values[("registryui_repositories", ())] == 2
    assert values[("registryui_registry_up", ())] == 1
    assert values[("registryui_sync_running", ())] == 0
    assert (
        values[
            ("registryui_sync_last_run_info", (("status", "succeeded"), ("trigger", run.trigger)))
        ]
        == 1
    )
    assert values[("registryui_sync_last_run_changes", (("change", "tags_added"),))] == 6
    by_kind = {
        dict(labels)["kind"]: value
        for (name, labels), value in values.items()
        if name == "registryui_sync_last_run_requests"
    }
    assert by_kind == {k: v for k, v in run.requests_by_kind.items()}
    assert values[("registryui_sync_runs_recorded", (("status", "succeeded"),))] == 1
    assert values[("registryui_stored_bytes", ())] > 0
    # The page just served is in the latency histogram under its URL name.
    page = ("method", "GET"), ("status", "2xx"), ("view", "catalog:repositories")
    assert values[("registryui_http_request_duration_seconds_count", page)] >= 1


@pytest.mark.django_db
def test_pull_counts_appear_when_pulls_are_tracked(settings):
    assert "registryui_pull_events" not in Client().get("/metrics").content.decode()
    settings.PULL_TRACKING = True
    PullTracking.bump({"counted": 7, "own": 3, "checks": 11})
    values = samples(Client().get("/metrics").content.decode())
    assert values[("registryui_pull_events_total", (("kind", "counted"),))] == 7
    assert values[("registryui_pull_events_total", (("kind", "own"),))] == 3
    assert values[("registryui_pull_events_total", (("kind", "checks"),))] == 11


@pytest.mark.django_db
def test_an_unreachable_registry_is_down_not_an_error(settings):
    settings.REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    values = samples(Client().get("/metrics").content.decode())
    assert values[("registryui_registry_up", ())] == 0
    assert values[("registryui_registry_reachable", ())] == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is needed")
def test_a_real_prometheus_scrapes_it_with_a_bearer_token(registry, tmp_path: Path):
    client = RegistryClient(registry.url, retries=0)
    seeder = Seeder(client)
    seeder.put("team-a/api", "1")
    app = start_app(
        tmp_path / "app",
        REGISTRY_URL=registry.url,
        REGISTRY_EVENTS_TOKEN=EVENTS_TOKEN,
        METRICS_TOKEN=TOKEN,
        # Prometheus comes from this host, but only the token should let it in.
        METRICS_ALLOWED_NETWORKS="",
    )
    prometheus = None
    try:
        app.manage("sync_registry")
        pushed = seeder.put("team-a/api", "2")
        # The registry's notification of the second push (checked with the registry by the
        # handler, as every event is): it gives the push → visible lag a sample.
        delivered = requests.post(
            f"{app.url}/events/registry",
            data=json.dumps({"events": [push_event("team-a/api", "2", pushed)]}),
            headers={"Authorization": f"Bearer {EVENTS_TOKEN}", "Content-Type": V1},
            timeout=30,
        )
        assert delivered.status_code == 200, delivered.text
        # Pages served by both gunicorn workers: the histogram adds up every process.
        for _ in range(12):
            requests.get(f"{app.url}/accounts/login/", timeout=10).raise_for_status()
        assert requests.get(f"{app.url}/metrics", timeout=10).status_code == 403
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: registryui\n"
            "    metrics_path: /metrics\n"
            f"    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n"
            f"    static_configs:\n      - targets: ['{app.url.removeprefix('http://')}']\n"
        )
        log = (tmp_path / "prometheus.log").open("w")
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(expression: str) -> list:
            answer = requests.get(f"{api}/query", params={"query": expression}, timeout=5).json()
            return answer["data"]["result"]

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if query("registryui_registry_up") and query("registryui_tags"):
                    break
            except (requests.ConnectionError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"no scrape:\n{(tmp_path / 'prometheus.log').read_text()}")

        [target] = requests.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
        assert target["health"] == "up", target
        names = set(requests.get(f"{api}/label/__name__/values", timeout=5).json()["data"])
        assert EXPECTED <= names, sorted(EXPECTED - names)
        [up] = query("registryui_registry_up")
        assert up["value"][1] == "1"
        [logins] = query('sum(registryui_http_request_duration_seconds_count{view="login"})')
        assert float(logins["value"][1]) >= 12
        # Every query of the sample Grafana dashboard is valid PromQL over names that exist.
        for expression in dashboard_queries():
            used = set(re.findall(r"registryui_\w+", expression))
            assert used <= names, (expression, used - names)
            answer = requests.get(f"{api}/query", params={"query": expression}, timeout=5)
            assert answer.json()["status"] == "success", (expression, answer.text)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        app.stop()
        client.close()
