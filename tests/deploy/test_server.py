"""The app under gunicorn as the image runs it (``deploy/entrypoint.sh web``), DEBUG off,
behind a simulated TLS proxy: pages, static files via WhiteNoise, security headers, the CSP,
plain-HTTP endpoints for machines, JSON logs, and the image's health check."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from html.parser import HTMLParser

import requests

from registryui.core.middleware import build_policy

from .support import BASE_DIR, app_env

HTTPS = {"X-Forwarded-Proto": "https"}


class InlineCodeFinder(HTMLParser):
    """What a strict CSP would block: inline scripts, <style>, style= and on*= attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if attributes.get("src"):
                self.scripts.append(attributes["src"] or "")
            elif attributes.get("type") not in ("application/json", "importmap"):
                self._in_inline_script = True
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href") or "")

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.problems.append(f"inline <script>: {data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False


def parse(html: str) -> InlineCodeFinder:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder


class ProxiedClient:
    """Requests as they arrive from a TLS-terminating proxy: X-Forwarded-Proto: https.

    The cookies are Secure, which ``requests`` keeps for https:// URLs, while we speak plain
    HTTP to the server as the proxy does; so this client carries them itself.
    """

    def __init__(self, server) -> None:
        self.server = server
        self.cookies: dict[str, requests.cookies.Cookie] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            **HTTPS,
            "Origin": f"https://127.0.0.1:{self.server.port}",
            "Referer": f"https://127.0.0.1:{self.server.port}{path}",
            **kwargs.pop("headers", {}),
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in self.cookies.values())
        response = requests.request(
            method,
            f"{self.server.url}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=10,
            **kwargs,
        )
        for cookie in response.cookies:
            self.cookies[cookie.name] = cookie
        return response

    def log_in(self) -> None:
        page = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        response = self.request(
            "POST",
            "/accounts/login/",
            data={
                "username": self.server.admin[0],
                "password": self.server.admin[1],
                "csrfmiddlewaretoken": token,
            },
        )
        assert response.status_code == 302, response.text[:2000]


def test_pages_carry_the_security_headers_and_the_csp(production_server, settings):
    response = requests.get(f"{production_server.url}/accounts/login/", headers=HTTPS, timeout=10)
    assert response.status_code == 200
    headers = response.headers
    assert headers["Content-Security-Policy"] == build_policy(settings.CONTENT_SECURITY_POLICY)
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    # includeSubDomains and preload reach beyond this host: off unless turned on.
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    csrf_cookie = next(c for c in response.cookies if c.name == "csrftoken")
    assert csrf_cookie.secure
    # Nothing in the page that the CSP would block, and its code comes from static files.
    page = parse(response.text)
    assert page.problems == []
    assert page.scripts and all(src.startswith("/static/") for src in page.scripts)
    assert page.stylesheets and all(href.startswith("/static/") for href in page.stylesheets)


def test_logged_in_pages_render_synced_data_without_inline_code(production_server):
    client = ProxiedClient(production_server)
    client.log_in()
    assert client.cookies["sessionid"].secure
    for path, expected in [
        ("/", "team-a/api"),
        ("/r/team-a/api", "1.4"),
        ("/r/team-a/api:1.4", "team-a/api"),
        ("/search/?q=worker", "team-b/worker"),
    ]:
        response = client.request("GET", path)
        assert response.status_code == 200, (path, response.status_code)
        assert expected in response.text, path
        assert "Content-Security-Policy" in response.headers
        assert parse(response.text).problems == [], path


def test_plain_http_is_redirected_to_https(production_server):
    response = requests.get(
        f"{production_server.url}/accounts/login/?next=/", allow_redirects=False, timeout=10
    )
    assert response.status_code == 301
    assert response.headers["Location"] == (
        f"https://127.0.0.1:{production_server.port}/accounts/login/?next=/"
    )


def test_a_client_cannot_claim_https_for_itself(production_server):
    """Only FORWARDED_ALLOW_IPS (here 127.0.0.1) may set X-Forwarded-Proto: from 127.0.0.2
    the header is dropped and the request is redirected like any plain-HTTP one."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", production_server.port, timeout=10, source_address=("127.0.0.2", 0)
    )
    try:
        connection.request("GET", "/accounts/login/", headers=HTTPS)
        response = connection.getresponse()
        assert response.status == 301
        assert response.getheader("Location").startswith("https://")
    finally:
        connection.close()


def test_machine_endpoints_answer_over_plain_http(production_server):
    health = requests.get(f"{production_server.url}/healthz", allow_redirects=False, timeout=10)
    assert health.status_code == 200
    assert health.headers["Content-Type"].startswith("application/json")
    assert isinstance(health.json(), dict)
    # The registry posts its notifications over the internal network without TLS: a redirect
    # would count as delivered and lose the event.
    url = f"{production_server.url}/events/registry"
    body = json.dumps({"events": []})
    content_type = {"Content-Type": "application/vnd.docker.distribution.events.v1+json"}
    refused = requests.post(url, data=body, headers=content_type, allow_redirects=False, timeout=10)
    assert refused.status_code == 401
    accepted = requests.post(
        url,
        data=body,
        headers={**content_type, "Authorization": f"Bearer {production_server.events_token}"},
        allow_redirects=False,
        timeout=10,
    )
    assert 200 <= accepted.status_code < 300, accepted.text


def test_static_files_are_served_by_whitenoise(production_server):
    page = requests.get(f"{production_server.url}/accounts/login/", headers=HTTPS, timeout=10)
    found = parse(page.text)
    for path in [*found.stylesheets, *found.scripts]:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", path), f"not a hashed name: {path}"
        response = requests.get(
            f"{production_server.url}{path}",
            headers={**HTTPS, "Accept-Encoding": "gzip"},
            timeout=10,
        )
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "max-age=315360000, public, immutable"
        assert response.headers["Content-Encoding"] in ("gzip", "br")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in response.headers
        kind = "text/css" if path.endswith(".css") else "text/javascript"
        assert response.headers["Content-Type"].startswith(kind)
        assert len(response.content) > 100


def test_logs_are_json_lines_on_stdout(production_server):
    requests.get(f"{production_server.url}/accounts/login/", headers=HTTPS, timeout=10)
    requests.get(f"{production_server.url}/no-such-page-xyz", headers=HTTPS, timeout=10)
    lines = production_server.log_text().splitlines()
    start = next(i for i, line in enumerate(lines) if '"Starting gunicorn' in line)
    # From gunicorn's start on, every line is one JSON object.
    records = [json.loads(line) for line in lines[start:] if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    login = next(r for r in access if r.get("path") == "/accounts/login/" and r["status"] == 200)
    assert login["method"] == "GET" and isinstance(login["duration_ms"], int)
    not_found = next(
        r for r in records if r["logger"] == "django.request" and "no-such-page" in r["message"]
    )
    assert not_found["level"] == "WARNING"
    assert not_found["status_code"] == 404
    assert not_found["path"] == "/no-such-page-xyz"
    booted = [r for r in records if r["message"].startswith("Booting worker")]
    assert len(booted) >= 2  # WEB_CONCURRENCY=2


def test_the_entrypoint_checked_and_migrated_before_serving(production_server):
    text = production_server.log_text()
    checked = text.index("System check identified no issues")
    migrated = text.index("Running migrations:")
    serving = text.index('"Starting gunicorn')
    assert checked < migrated < serving
    assert "Applying catalog.0001_initial... OK" in text


def test_the_image_health_check_reports_healthy(production_server):
    script = str(BASE_DIR / "deploy/healthcheck.py")

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["python", script], env=app_env(**env), capture_output=True, text=True, timeout=30
        )

    healthy = run(
        GUNICORN_BIND=f"0.0.0.0:{production_server.port}", ALLOWED_HOSTS=".example.com,localhost"
    )
    assert healthy.returncode == 0, healthy.stderr
    assert isinstance(json.loads(healthy.stdout), dict)
    # It sends the first concrete ALLOWED_HOSTS name; one the server does not allow → 400.
    wrong_host = run(
        GUNICORN_BIND=f"0.0.0.0:{production_server.port}", ALLOWED_HOSTS="ui.example.com"
    )
    assert wrong_host.returncode == 1
    assert "answered 400" in wrong_host.stderr
    from registryui.devtools.registry import free_port

    down = run(GUNICORN_BIND=f"0.0.0.0:{free_port()}")
    assert down.returncode == 1
    assert "unhealthy" in down.stderr
