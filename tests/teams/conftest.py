from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import transaction

from tests.personas import Persona, make_personas, personas  # noqa: F401
from tests.support import Samples, registry_settings, sync


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Passwords set during these tests are hashed cheaply; stored PBKDF2 hashes still work."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@dataclass
class World:
    registry: Samples
    personas: dict[str, Persona]


@pytest.fixture(scope="module")
def world(samples_registry, django_db_setup, django_db_blocker) -> Iterator[World]:
    """The sample registry synced into the database, and the personas, for one module.

    Everything is written inside one transaction that is rolled back at the end of the
    module; each test runs in a savepoint inside it (pytest-django's ``db``), so what a test
    changes in the database is undone after it.
    """
    with django_db_blocker.unblock(), registry_settings(samples_registry):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            sync(samples_registry)
            yield World(samples_registry, make_personas())
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
