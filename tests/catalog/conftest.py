"""Fixtures of the browse, search and lookup tests: the sample images of ``tests/support.py``
synced into the database once per module, and the personas of ``tests/personas.py``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import transaction

from tests.personas import Persona, make_personas
from tests.support import PUBLIC_HOST, Samples, registry_settings, sync


@dataclass
class World:
    samples: Samples
    personas: dict[str, Persona]

    def client(self, persona: str = "superuser", **kwargs):
        return self.personas[persona].client(**kwargs)

    def digest(self, reference: str) -> str:
        return self.samples.digests[reference]


@pytest.fixture(scope="module")
def world(samples, django_db_setup, django_db_blocker) -> Iterator[World]:
    """The samples synced into the database and the personas, for one test module.

    Written in one transaction that is rolled back after the module; each test runs in a
    savepoint inside it (pytest-django's ``db``), so a test's own changes are undone after it.
    """
    with django_db_blocker.unblock(), registry_settings(samples):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            sync(samples)
            yield World(samples, make_personas())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def catalog(world, db, settings) -> World:
    """``world`` inside a test: the database is usable and REGISTRY_PUBLIC_HOST is set."""
    settings.REGISTRY_URL = world.samples.process.url
    settings.REGISTRY_PUBLIC_HOST = PUBLIC_HOST
    return world
