#!/usr/bin/env python3
"""How long does a person wait in a real browser for the catalog and a 1,000-tag repository?

Fills a fresh SQLite database with ``bench/pages.py``'s synthetic catalog (1,500 repositories
and ``bench/big`` with 1,000 tags of distinct images and a third shared), serves the app with
gunicorn on a free loopback port (production settings: DEBUG off, WhiteNoise's compressed
static files), and drives Debian's Chromium through Playwright, a fresh browser context (empty
cache, no connection reuse) per run, already logged in (its session cookie is set; the login
is not what is measured):

- **catalog**: from navigation start to the first paint of the repository list, whose total
  count ("1,501 repositories") is in the first HTML;
- **repository**: the same for ``/r/bench/big``, whose first page shows each image's size and
  dates in the first HTML;
- **floor**: the same for ``/healthz``, a few bytes of text from the same server: what
  navigation and a first paint cost in this browser on this machine, whatever the page.

"Rendered" is the browser's own first-contentful-paint, after checking that the element is
in the page then (stylesheets block that paint, deferred scripts do not); the time until
Playwright sees the element visible is printed too. Medians over ``--runs`` (default 7).
Target: ≤ 250 ms each, reported also as a ratio to the floor measured in the same run.

    .venv/bin/python bench/browser.py [--runs 7] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET_MS = 250.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--repositories", type=int, default=1500)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    return parser.parse_args()


def free_port() -> int:
    from registryui.devtools.registry import free_port as port

    return port()


def environment(workdir: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "registryui.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'browser.sqlite3'}",
        "SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "VAR_DIR": str(workdir),
        "STATIC_ROOT": str(workdir / "static"),
        "REGISTRY_PUBLIC_HOST": "registry.example.com",
        "LOG_LEVEL": "ERROR",
        "LOG_FORMAT": "plain",
        "PYTHONPATH": str(BASE_DIR),
    }


def prepare(env: dict[str, str]) -> tuple[str, object]:
    """Migrate, fill, collect static files; the bench user's session cookie."""
    os.environ.update(env)
    import django

    django.setup()
    import pages
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    catalog = pages.fill(1000 + 2 * 1500, big=1000, repositories=1500)
    call_command("collectstatic", verbosity=0, interactive=False)
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    return client.cookies[settings.SESSION_COOKIE_NAME].value, catalog


def start_gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    import requests

    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(BASE_DIR / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "registryui.wsgi",
            ],
            cwd=BASE_DIR,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


FCP_SEEN_JS = "() => performance.getEntriesByName('first-contentful-paint').length > 0"

PAINT_JS = """(selector) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {
    fcp: fcp ? fcp.startTime : null,
    response_start: nav.responseStart,
    response_end: nav.responseEnd,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    bytes: nav.transferSize,
    resources: performance.getEntriesByType('resource').map(
      r => [r.name.split('/').pop(), Math.round(r.duration), r.transferSize,
            r.renderBlockingStatus || '']),
    text: selector ? (document.querySelector(selector) || {}).textContent || ''
                   : document.body.textContent,
  };
}"""


def measure(browser, base: str, path: str, selector: str, cookie: str) -> dict:
    context = browser.new_context()
    try:
        if cookie:
            context.add_cookies(
                [{"name": "sessionid", "value": cookie, "url": base, "httpOnly": True}]
            )
        page = context.new_page()
        started = time.perf_counter()
        page.goto(base + path, wait_until="commit")
        if selector:
            page.wait_for_selector(selector, state="visible")
        visible = (time.perf_counter() - started) * 1000
        page.wait_for_load_state("load")
        # The paint entry is queued a moment after the paint.
        # Polled from here: wait_for_function evaluates a string in the page, which the
        # app's CSP (script-src 'self', no 'unsafe-eval') refuses.
        deadline = time.monotonic() + 10
        while not page.evaluate(FCP_SEEN_JS) and time.monotonic() < deadline:
            page.wait_for_timeout(10)
        result = page.evaluate(PAINT_JS, selector)
        result["visible"] = visible
        return result
    finally:
        context.close()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="registryui-bench-browser-"))
    server = None
    try:
        env = environment(workdir)
        cookie, catalog = prepare(env)
        from django.conf import settings

        assert settings.SESSION_COOKIE_NAME == "sessionid"
        port = free_port()
        server = start_gunicorn(env, port, args.workers, workdir / "gunicorn.log")
        base = f"http://127.0.0.1:{port}"
        from playwright.sync_api import sync_playwright

        targets = [
            ("floor (/healthz)", "/healthz", "", ""),
            ("catalog, first page with the total", "/", "#repository-count", "repositories"),
            (
                f"repository with {catalog.big_tags:,} tags, first page with sizes and dates",
                "/r/bench/big",
                "tbody.image td.num",
                "",
            ),
        ]
        results: dict[str, list[dict]] = {name: [] for name, *_ in targets}
        load_start = os.getloadavg()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                for _, path, selector, _ in targets:  # warm the server's caches once
                    measure(browser, base, path, selector, cookie)
                for _ in range(args.runs):  # interleaved: the machine's load weighs on all
                    for name, path, selector, expect in targets:
                        result = measure(browser, base, path, selector, cookie)
                        if expect and expect not in result["text"]:
                            raise SystemExit(f"{path}: {selector} says {result['text']!r}")
                        results[name].append(result)
            finally:
                browser.close()
        floor = statistics.median(r["fcp"] for r in results[targets[0][0]])
        print(
            f"# bench/browser.py — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
            f"{platform.node()}, {os.cpu_count()} CPUs, Chromium (Playwright, fresh context per "
            f"run), gunicorn {args.workers} workers, SQLite, medians of {args.runs} runs"
        )
        print()
        print(
            "| page | first paint | ÷ floor | first byte | last byte | DOMContentLoaded | "
            "element visible | load event | HTML bytes |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        summary = {}
        for name, *_ in targets:
            rows = results[name]
            fcp = statistics.median(r["fcp"] for r in rows)
            visible = statistics.median(r["visible"] for r in rows)
            load = statistics.median(r["load"] for r in rows)
            first = statistics.median(r["response_start"] for r in rows)
            last = statistics.median(r["response_end"] for r in rows)
            dcl = statistics.median(r["dom_content_loaded"] for r in rows)
            size = rows[-1]["bytes"]
            summary[name] = {
                "fcp_ms": fcp,
                "first_byte_ms": first,
                "last_byte_ms": last,
                "dom_content_loaded_ms": dcl,
                "visible_ms": visible,
                "load_ms": load,
            }
            print(
                f"| {name} | {fcp:.0f} ms | {fcp / floor:.2f} | {first:.0f} ms | {last:.0f} ms | "
                f"{dcl:.0f} ms | {visible:.0f} ms | {load:.0f} ms | {size:,} |"
            )
        print()
        print("What the catalog page loads (name, ms, bytes transferred, render-blocking):")
        for resource in results[targets[1][0]][-1]["resources"]:
            print(f"  {resource}")
        worst = max(v["fcp_ms"] for k, v in summary.items() if not k.startswith("floor"))
        print(
            f"\nWorst first paint {worst:.0f} ms (target ≤ {TARGET_MS:.0f} ms: "
            f"{'met' if worst <= TARGET_MS else 'NOT met'}). Load average at the start "
            f"{tuple(round(x, 2) for x in load_start)}, at the end "
            f"{tuple(round(x, 2) for x in os.getloadavg())}."
        )
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
