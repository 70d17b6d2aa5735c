"""Property-based test of the API from its own OpenAPI document (schemathesis), against the
app with the sample registry synced: for every operation, generated requests (as a
superuser's token, so that they get past the door) never make a 500, and every response
matches the document (status documented, body valid, content type as declared).

Bounded for CI: a few examples per operation (``MAX_EXAMPLES``), no shrinking, no database
of examples. Whatever a generated mutation wrote, the sample registry is put back.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from registryui.wsgi import application

from .support import personal_token

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 8


@pytest.fixture(scope="module")
def token(world, django_db_blocker) -> str:
    with django_db_blocker.unblock():
        return personal_token(world.personas["superuser"].user, name="schemathesis")


@pytest.fixture(scope="module", autouse=True)
def _put_the_registry_back(world):
    mark = world.registry.process.mark()
    yield
    world.registry.restore_if_written(world.registry.process.requests_since(mark))


@pytest.fixture
def _connection_kept():
    """Requests go straight to the WSGI handler, whose request signals would close the
    database connection inside the test's transaction (PostgreSQL): Django's test client
    disconnects them the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def test_the_api_keeps_to_its_document(world, token, settings, _connection_kept):
    # Schemathesis sends bad credentials over and over (401 expected); the login limit would
    # answer 429 after a few (tests/api/test_actions.py tests the limit).
    settings.LOGIN_FAILURE_LIMIT = 1_000_000
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    headers = {"Authorization": f"Bearer {token}"}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            # Path parameters are references (NAME:TAG, NAME@DIGEST) whose grammar the
            # document states in words, not as a pattern: a generated "«" is rightly a 400,
            # which schemathesis would take for a valid request rejected.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # every operation is tried; all failures are reported
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 14
    assert not failures, "\n\n".join(failures)
