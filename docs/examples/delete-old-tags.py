#!/usr/bin/env python3
"""Delete the tags of a repository older than N days, as a CI job would, through the REST API.

Dry run by default: it lists what it would delete. With --apply it deletes them in one bulk
delete, each tag confirmed with the digest it was listed at: the API deletes a tag only while
the registry still has it at that digest, so a tag pushed again meanwhile is left alone (the API
answers 409 ``changed``; this script reports those tags and still exits 0). Every delete of the
API names what its caller saw: ``DELETE /api/v1/tags/NAME:TAG?digest=sha256:…`` for one tag,
``DELETE /api/v1/images/NAME@sha256:…`` for an image. Needs only the standard library and
requests.

    REGISTRYUI_TOKEN=rui_pat_… python3 delete-old-tags.py https://registry-ui.example.com \\
        team-a/api --days 30 [--keep latest --keep stable] [--apply]

Exit status: 0 done (or nothing to do; tags pushed again meanwhile are left alone and named),
1 the API refused or failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests


def tags_of(session: requests.Session, base: str, repository: str) -> list[dict]:
    tags, cursor = [], None
    while True:
        params = {"sort": "tag", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = session.get(
            f"{base}/api/v1/repositories/{quote(repository)}/-/tags", params=params, timeout=30
        )
        check(response)
        page = response.json()
        tags.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return tags


def age_of(tag: dict) -> datetime | None:
    """When the UI first saw the tag (what retention counts from); None when unknown."""
    seen = tag.get("first_seen") or tag.get("changed_at")
    return datetime.fromisoformat(seen.replace("Z", "+00:00")) if seen else None


def check(response: requests.Response) -> None:
    if response.status_code >= 400:
        try:
            problem = response.json()
            message = f"{problem.get('code')}: {problem.get('detail')}"
        except ValueError:
            message = response.text[:200]
        sys.exit(f"error: {response.status_code} {message}")


#: Outcomes that leave the registry as asked: deleted, already gone, or pushed again since it was
#: listed (left alone: nobody chose the image pushed since).
SETTLED = {"done", "gone", "changed"}


def left_alone(response: requests.Response) -> list[str] | None:
    """The tags left alone because they were pushed again since they were listed, when that is
    all that kept the bulk delete from finishing (409 ``changed``); None otherwise."""
    if response.status_code != 409:
        return None
    problem = response.json()
    outcomes = problem.get("execution", {}).get("outcomes", [])
    if problem.get("code") != "changed" or not all(o["result"] in SETTLED for o in outcomes):
        return None
    return [o["reference"] for o in outcomes if o["result"] == "changed"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "url", help="The Registry UI's address, e.g. https://registry-ui.example.com"
    )
    parser.add_argument("repository", help="e.g. team-a/api")
    parser.add_argument("--days", type=int, required=True, help="Delete tags older than this.")
    parser.add_argument("--keep", action="append", default=[], help="A tag never deleted.")
    parser.add_argument("--apply", action="store_true", help="Delete (default: dry run).")
    args = parser.parse_args(argv)
    token = os.environ.get("REGISTRYUI_TOKEN")
    if not token:
        parser.error("set REGISTRYUI_TOKEN to a personal access token or robot secret")
    if args.days < 0:
        parser.error("--days must be 0 or more")

    base = args.url.rstrip("/")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    cutoff = datetime.now(UTC) - timedelta(days=args.days)
    old = []
    for tag in tags_of(session, base, args.repository):
        seen = age_of(tag)
        if tag["name"] not in args.keep and seen is not None and seen < cutoff:
            old.append(tag)
    if not old:
        print(f"{args.repository}: no tag older than {args.days} days.")
        return 0
    for tag in old:
        print(f"{'delete' if args.apply else 'would delete'} {args.repository}:{tag['name']}")
    body = {"tags": [{"tag": t["name"], "digest": t["digest"]} for t in old]}
    if not args.apply:
        body["dry_run"] = True
    response = session.post(
        f"{base}/api/v1/repositories/{quote(args.repository)}/-/bulk-delete",
        json=body,
        timeout=300,
    )
    moved = left_alone(response) if args.apply else None
    if moved is None:
        check(response)
        result = response.json()
    else:
        result = response.json()["execution"]
    if args.apply:
        print(f"deleted {len(result['deleted_tags'])} tag(s): {', '.join(result['deleted_tags'])}")
        if moved:
            print(f"left alone, pushed again since they were listed: {', '.join(moved)}")
    else:
        print(f"dry run: {result['freed_bytes']} bytes to reclaim; run with --apply to delete.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
