from __future__ import annotations

import pytest

from tests.events.support import _fresh_quick_clients, worker_database  # noqa: F401
from tests.personas import personas  # noqa: F401

from .support import Receiver


@pytest.fixture
def receiver_factory(settings):
    # The receivers listen on loopback, which webhooks refuse by default.
    settings.WEBHOOK_BLOCKED_NETWORKS = []
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        started.append(Receiver(**kwargs).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receiver_factory) -> Receiver:
    return receiver_factory()
