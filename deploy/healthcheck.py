"""The image's HEALTHCHECK: ``GET /healthz`` on the local gunicorn; healthy on 200.

Plain Python (no curl in the slim image). It sends the first concrete name of ALLOWED_HOSTS as
the ``Host`` header, so that Django's host check passes whatever names are configured, and
treats a redirect as a failure (``/healthz`` is exempt from the HTTPS redirect; a redirect
means the settings are wrong).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError for the 3xx answer


def host_header(allowed_hosts: str) -> str:
    for host in allowed_hosts.split(","):
        host = host.strip()
        if host and host != "*" and not host.startswith("."):
            return host
    return "localhost"


def healthz_url(bind: str) -> str:
    if bind.startswith("unix:"):
        raise SystemExit(f"healthcheck: GUNICORN_BIND={bind!r} is a socket; check it another way.")
    port = bind.rsplit(":", 1)[-1] if ":" in bind else "8000"
    return f"http://127.0.0.1:{port}/healthz"


def main() -> int:
    url = healthz_url(os.environ.get("GUNICORN_BIND", "0.0.0.0:8000"))
    # The URL is built above from a port number: always http://127.0.0.1.
    request = urllib.request.Request(  # noqa: S310
        url,
        headers={
            "Host": host_header(os.environ.get("ALLOWED_HOSTS", "localhost")),
            "User-Agent": "registryui-healthcheck",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "5"))) as r:
            body = r.read(2000).decode(errors="replace")
            status = r.status
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}", file=sys.stderr)
        return 1
    except OSError as exc:  # refused, timed out, ...
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print(body)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
