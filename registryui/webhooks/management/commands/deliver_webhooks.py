"""``deliver_webhooks``: send due webhook deliveries (``--once``) or keep sending (default).

``sync_registry --loop`` already runs the same dispatcher in a thread; this command is for
sending without a sync worker, and for scripts (``--once`` sends what is due and returns).
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from registryui.webhooks.delivery import Dispatcher


class Command(BaseCommand):
    help = "Send due webhook deliveries (--once), or keep sending until SIGTERM."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Send what is due, then exit.")

    def handle(self, *args, once: bool = False, **options) -> None:
        dispatcher = Dispatcher()
        if once:
            sent = dispatcher.step(inline=True)
            self.stdout.write(f"{sent} deliveries attempted")
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: dispatcher.stop_event.set())
        self.stdout.write("webhook dispatcher started", ending="\n")
        self.stdout.flush()
        dispatcher.run_forever()
        self.stdout.write("webhook dispatcher stopped")
