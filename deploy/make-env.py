#!/usr/bin/env python3
"""Write a .env for docker-compose.yml from .env.example, with fresh random secrets.

    python3 deploy/make-env.py            # production template: then set your host names
    python3 deploy/make-env.py --local    # a trial on this machine: http://localhost:8000

It never overwrites an existing file (the secrets in it guard a database and sessions).
Standard library only: it runs on the Docker host, outside the image.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

#: Filled with a new random value each time (URL-safe: no "$" for Compose, no "@" or "/" for
#: DATABASE_URL).
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "REGISTRY_EVENTS_TOKEN", "REGISTRY_HTTP_SECRET")

#: A trial on one machine: plain HTTP on localhost, no reverse proxy.
LOCAL = {
    "ALLOWED_HOSTS": "localhost,127.0.0.1",
    "CSRF_TRUSTED_ORIGINS": "",
    "BEHIND_HTTPS_PROXY": "false",
    "REGISTRY_PUBLIC_HOST": "localhost:5000",
    "TOKEN_REALM": "http://localhost:8000/auth/token",
    "LOG_FORMAT": "plain",
}


def render(template: str, values: dict[str, str]) -> str:
    """The template with ``NAME=value`` lines replaced; every name must be in it."""
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)}=.*$", re.MULTILINE)
        if not pattern.search(template):
            raise SystemExit(f"make-env: .env.example has no {name}= line.")
        template = pattern.sub(lambda _m, n=name, v=value: f"{n}={v}", template, count=1)
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--local", action="store_true", help="plain HTTP on http://localhost:8000, no proxy"
    )
    parser.add_argument(
        "--output", type=Path, default=BASE_DIR / ".env", help="file to write (default: .env)"
    )
    args = parser.parse_args(argv)
    if args.output.exists():
        print(f"make-env: {args.output} exists; not overwriting it.", file=sys.stderr)
        return 1
    values = {name: secrets.token_urlsafe(48) for name in SECRETS}
    if args.local:
        values.update(LOCAL)
    text = render((BASE_DIR / ".env.example").read_text(), values)
    # Readable by its owner only, from the first byte on.
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    print(f"Wrote {args.output} with new secrets.")
    if not args.local:
        print(
            "Now set ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, REGISTRY_PUBLIC_HOST and TOKEN_REALM "
            "to your host names (docs/OPERATIONS.md)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
