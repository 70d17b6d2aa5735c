from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from registryui.catalog.sync import Progress, Syncer
from registryui.catalog.upstream import get_client
from registryui.lib.reference import is_valid_name


class Command(BaseCommand):
    help = "Mirror the registry's catalog, tags and manifests into the database."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repository", help="Sync only this repository.")
        parser.add_argument(
            "--concurrency", type=int, help="Parallel requests (default: SYNC_CONCURRENCY)."
        )
        parser.add_argument(
            "--page-size", type=int, help="Catalog page size, at most 1000 (default 1000)."
        )

    def handle(self, *args, **options) -> None:
        name = options.get("repository")
        if name and not is_valid_name(name):
            raise CommandError(f"{name!r} is not a valid repository name.")
        page_size = options.get("page_size")
        if page_size is not None and not 1 <= page_size <= 1000:
            raise CommandError("--page-size must be within 1..1000 (the registry's limit).")
        interactive = self.stdout.isatty()
        syncer = Syncer(
            get_client(),
            concurrency=options.get("concurrency"),
            page_size=page_size,
            on_progress=self._show_progress if interactive else None,
        )
        run = syncer.run(repository=name)
        if interactive:
            self.stdout.write("\r\033[K", ending="")
        self.stdout.write(summary_line(run))
        for error in run.errors.all()[:20]:
            self.stderr.write(f"  {error.repository or '(catalog)'}: {error.message}")
        if not run.ok:
            sys.exit(1)

    def _show_progress(self, progress: Progress) -> None:
        self.stdout.write(
            f"\r\033[Krepositories {progress.repositories_done}/{progress.repositories_total}"
            f"  tags {progress.tags_seen}  new manifests {progress.manifests_fetched}"
            f"  requests {progress.requests}  {progress.elapsed:.1f}s",
            ending="",
        )
        self.stdout.flush()


def summary_line(run) -> str:
    seconds = run.duration.total_seconds() if run.duration else 0.0
    line = (
        f"sync {run.status}: {run.repositories_synced}/{run.repositories_seen} repositories, "
        f"{run.tags_seen} tags (+{run.tags_added} ~{run.tags_updated} -{run.tags_removed}), "
        f"{run.repositories_removed} repositories removed, "
        f"{run.manifests_fetched} new manifests, {run.requests_made} requests, "
        f"{run.repositories_failed} failed, {seconds:.1f}s"
    )
    if run.error:
        line += f" — {run.error}"
    return line
