"""``python manage.py apply_retention [--dry-run] [--policy NAME]``: run retention from cron.

Runs every switched-on policy (or the one named) over all matching repositories, printing per
repository the tags deleted, the tags kept with their reasons, and the bytes garbage-collect
will reclaim. SIGTERM/SIGINT stop it cleanly between repositories. The exit status is 1 when
anything failed, 2 for bad arguments.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from registryui.cleanup import retention
from registryui.cleanup.models import RetentionPolicy
from registryui.cleanup.outcomes import Actor
from registryui.lib.humanize import iec_size


class Command(BaseCommand):
    help = "Apply retention policies (or preview them with --dry-run)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would be deleted and why each other tag is kept; delete nothing.",
        )
        parser.add_argument(
            "--policy",
            metavar="NAME",
            help="Run only this policy (by name). A switched-off policy can only be previewed.",
        )
        parser.add_argument(
            "--verbose-keep",
            action="store_true",
            help="List every kept tag with its reasons (default: only counts, and the tags "
            "kept because they share an image with a kept tag).",
        )

    def handle(self, *args, dry_run: bool, policy: str | None, verbose_keep: bool, **options):
        policies = self._policies(policy, dry_run)
        stop = threading.Event()
        previous = self._install_signal_handlers(stop)
        failed = False
        try:
            for item in policies:
                if stop.is_set():
                    break
                failed |= self._run(item, dry_run=dry_run, verbose_keep=verbose_keep, stop=stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if stop.is_set():
            self.stderr.write("Interrupted: the repositories not reached were left alone.")
            failed = True
        if failed:
            raise CommandError("Some deletions failed; see above and the audit log.", returncode=1)

    def _policies(self, name: str | None, dry_run: bool) -> list[RetentionPolicy]:
        if name is None:
            found = list(RetentionPolicy.objects.enabled())
            if not found:
                self.stdout.write("No retention policy is switched on.")
            return found
        policy = RetentionPolicy.objects.filter(name=name).first()
        if policy is None:
            known = ", ".join(RetentionPolicy.objects.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"No retention policy named {name!r} (known: {known}).", returncode=2
            )
        if not policy.enabled and not dry_run:
            raise CommandError(
                f"The policy {name!r} is switched off: switch it on in the admin, or add "
                "--dry-run to preview it.",
                returncode=2,
            )
        return [policy]

    def _run(self, policy: RetentionPolicy, *, dry_run: bool, verbose_keep: bool, stop) -> bool:
        planned = retention.preview(policy)
        mode = "dry run" if dry_run else "applying"
        size = iec_size(planned.freed.bytes)
        self.stdout.write(
            f"Policy {policy.name!r} ({mode}): {policy.repository_pattern}, "
            f"{len(planned.repositories)} repositories, {planned.tag_count} tags to delete, "
            f"{size} ({planned.freed.bytes} bytes) to reclaim."
        )
        if planned.unknown_age_count:
            self.stdout.write(
                f"  {planned.unknown_age_count} tag(s) kept because their age is unknown "
                "(no trustworthy time Registry UI first saw them); they are listed below."
            )
        for item in planned.repositories:
            unknown = [v for v in item.kept if v.since is None and policy.uses_age]
            if not item.to_delete and not verbose_keep and not unknown:
                continue
            self.stdout.write(
                f"  {item.repository.name}: delete {len(item.to_delete)}, keep {len(item.kept)}"
            )
            for verdict in item.to_delete:
                self.stdout.write(f"    - delete {verdict.tag} ({verdict.short_digest})")
            for verdict in item.kept:
                shared = any(r.startswith(("shares", "its image")) for r in verdict.reasons)
                if verbose_keep or shared or verdict in unknown:
                    self.stdout.write(f"    = keep {verdict.tag}: {'; '.join(verdict.reasons)}")
        if dry_run or not planned.tag_count:
            return False
        actor = Actor(name=f"policy:{policy.name}", via="policy")
        result = retention.apply(policy, planned, actor, should_stop=stop.is_set)
        for execution in result.executions:
            for outcome in execution.outcomes:
                what = (
                    f"image {outcome.digest} ({', '.join(outcome.tags)})"
                    if outcome.kind == "image"
                    else f"tag {outcome.reference}"
                )
                self.stdout.write(
                    f"  {execution.repository.name}: {what}: {outcome.result}"
                    + (f" — {outcome.message}" if outcome.message else "")
                )
        self.stdout.write(f"Policy {policy.name!r}: {result.summary}.")
        for failure in result.failures:
            self.stderr.write(f"  failed: {failure}")
        return bool(result.failures)

    @staticmethod
    def _install_signal_handlers(stop: threading.Event) -> dict:
        previous = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # signal handlers can only be set from the main thread

        def handler(signum, frame) -> None:
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
        return previous
