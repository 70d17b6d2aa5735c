"""core.audit.record writes what a client sent, even text PostgreSQL would refuse."""

from __future__ import annotations

import pytest

from registryui.core.audit import record
from registryui.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_nul_characters_and_overlong_text_are_recorded_not_refused():
    record(
        "login_failed",
        actor_name="eve\x00" + "e" * 300,
        via="token",
        repository="team-a/\x00api",
        details={"scopes\x00": ["repository:team-a/\x00api:push"], "n": 1},
        result=AuditEntry.Result.FAILED,
        message="bad\x00password",
    )
    entry = AuditEntry.objects.get()
    assert entry.actor_name == ("eve" + "e" * 300)[:150]
    assert entry.repository == "team-a/api"
    assert entry.details == {"scopes": ["repository:team-a/api:push"], "n": 1}
    assert entry.message == "badpassword"
    assert entry.actor is None
