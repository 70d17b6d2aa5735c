from __future__ import annotations

import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from registryui.catalog.models import SyncRun
from registryui.catalog.upstream import get_client
from registryui.lib.reference import is_valid_name
from registryui.registry.client import MAX_CATALOG_PAGE
from registryui.sync.syncer import Progress, Syncer, stop_on_signals
from registryui.sync.worker import SyncBusy, locked_run, run_loop


class Command(BaseCommand):
    help = "Mirror the registry's catalog, tags and manifests into the database."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repository", help="Sync only this repository.")
        parser.add_argument(
            "--concurrency", type=int, help="Parallel requests (default: SYNC_CONCURRENCY)."
        )
        parser.add_argument(
            "--page-size",
            type=int,
            help=f"Catalog page size, at most {MAX_CATALOG_PAGE} (default SYNC_CATALOG_PAGE_SIZE).",
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Run full syncs forever, one every --interval seconds (stop with SIGTERM/SIGINT).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            help="Seconds between syncs with --loop (default SYNC_INTERVAL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        page_size = options.get("page_size")
        if page_size is not None and not 1 <= page_size <= MAX_CATALOG_PAGE:
            raise CommandError(
                f"--page-size must be within 1..{MAX_CATALOG_PAGE} (the registry's limit)."
            )
        concurrency = options.get("concurrency")
        if concurrency is not None and concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        if options.get("loop"):
            self.loop(options)
            return
        run = self.sync_once(options)
        if not run.ok:
            sys.exit(1)

    def loop(self, options: dict[str, Any]) -> None:
        """Check the options of ``--loop`` and hand them to the worker (``registryui.sync.worker``:
        the loop, signals and the lock)."""
        if options.get("repository"):
            raise CommandError("--loop syncs the whole registry; --repository is for one-off runs.")
        interval = options.get("interval")
        interval = settings.SYNC_INTERVAL if interval is None else interval
        if not interval > 0:
            raise CommandError("--interval must be a positive number of seconds.")

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        run_loop(
            interval=interval,
            concurrency=options.get("concurrency"),
            page_size=options.get("page_size"),
            write=write,
        )

    def sync_once(self, options: dict[str, Any]) -> SyncRun:
        """One run with the command's (checked) options; prints progress on a terminal and the
        summary."""
        name = options.get("repository")
        if name and not is_valid_name(name):
            raise CommandError(f"{name!r} is not a valid repository name.")
        progress = ProgressLine(self.stdout) if self.stdout.isatty() else None
        syncer = Syncer(
            get_client(),
            concurrency=options.get("concurrency"),
            page_size=options.get("page_size"),
            on_progress=progress,
        )
        with stop_on_signals(syncer.stop_event):
            try:
                run = locked_run(syncer, name)  # never two syncs at once (registryui.sync.lock)
            except SyncBusy as exc:
                raise CommandError(str(exc)) from None
        if progress is not None:
            progress.clear()
        self.stdout.write(run.summary())
        for error in run.errors.all()[:20]:
            self.stderr.write(f"  {error.repository or '(catalog)'}: {error.message}")
        return run


class ProgressLine:
    """One line on a terminal, rewritten in place at most ten times a second."""

    INTERVAL = 0.1

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < self.INTERVAL:
            return
        self._last = now
        total = progress.repositories_total or "?"
        self.out.write(
            f"\r\033[Krepositories {progress.repositories_done}/{total}"
            f"  tags {progress.tags_seen}  new manifests {progress.manifests_fetched}"
            f"  requests {progress.requests}  {progress.elapsed:.1f}s",
            ending="",
        )
        self.out.flush()

    def clear(self) -> None:
        self.out.write("\r\033[K", ending="")
