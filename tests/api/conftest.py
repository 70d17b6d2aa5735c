"""Fixtures of the API tests: the sample registry synced once per module (``world``, as the
permission matrix has it) and credentials for the personas.

Tests that act on a registry of their own use ``tests/cleanup/support.World`` (``lab``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import transaction

from registryui.devtools.images import Layout
from tests.cleanup.support import World as Lab
from tests.personas import Persona, make_personas, personas  # noqa: F401
from tests.support import Samples, registry_settings, sync


@dataclass
class World:
    registry: Samples
    personas: dict[str, Persona]


@pytest.fixture(scope="module")
def world(samples_registry, django_db_setup, django_db_blocker) -> Iterator[World]:
    """The sample registry synced into the database and the personas, for one module, in a
    transaction rolled back at its end (each test runs in a savepoint inside it)."""
    with django_db_blocker.unblock(), registry_settings(samples_registry):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            sync(samples_registry)
            yield World(samples_registry, make_personas())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def lab(settings, registry_factory, tmp_path: Path) -> Lab:
    """A registry of this test's own (actions change it)."""
    process = registry_factory()
    settings.REGISTRY_URL = process.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 0
    settings.SYNC_CONCURRENCY = 4
    return Lab(registry=process, layout=Layout(tmp_path / "layout"))
