"""``manage.py demo_data``: the demo's logins and teams, the same however often it runs."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from registryui.teams.models import Grant, Level, Team


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """Each run sets three passwords; the real hasher would take seconds on a busy machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def state() -> dict:
    User = get_user_model()
    return {
        "users": sorted(
            User.objects.values_list("username", "is_staff", "is_superuser", "is_active")
        ),
        "teams": sorted(
            (team.name, tuple(sorted(team.members.values_list("username", flat=True))))
            for team in Team.objects.all()
        ),
        "grants": sorted(Grant.objects.values_list("team__name", "pattern", "level")),
    }


@pytest.mark.django_db
def test_demo_data_is_idempotent():
    first = io.StringIO()
    call_command("demo_data", "--password", "registryui-demo", stdout=first)
    after_first = state()
    second = io.StringIO()
    call_command("demo_data", "--password", "registryui-demo", stdout=second)
    assert state() == after_first
    assert after_first["users"] == [
        ("admin", True, True, True),
        ("alice", False, False, True),
        ("bob", False, False, True),
    ]
    assert after_first["teams"] == [("team-a", ("alice",)), ("team-b", ("bob",))]
    assert after_first["grants"] == [
        ("team-a", "hello", Level.VIEW),
        ("team-a", "team-a/*", Level.DELETE),
        ("team-b", "platform/*", Level.VIEW),
        ("team-b", "team-b/*", Level.ADMIN),
    ]
    assert "Created the demo login 'admin'." in first.getvalue()
    assert "Updated the demo login 'admin'." in second.getvalue()
    assert "Created" not in second.getvalue()


@pytest.mark.django_db
def test_demo_data_resets_passwords_and_repairs_what_was_changed():
    call_command("demo_data", "--password", "one", stdout=io.StringIO())
    User = get_user_model()
    User.objects.filter(username="admin").update(is_superuser=False, is_active=False)
    Grant.objects.filter(pattern="team-a/*").update(level=Level.VIEW)
    call_command("demo_data", "--password", "two", stdout=io.StringIO())
    admin = authenticate(username="admin", password="two")
    assert admin is not None and admin.is_superuser and admin.is_staff
    assert authenticate(username="alice", password="two") is not None
    assert authenticate(username="alice", password="one") is None
    assert Grant.objects.get(pattern="team-a/*").level == Level.DELETE
