"""Issue 11, leak 6: ``/accounts/password_reset/`` was routed though mail is never configured
(its form either failed or claimed to send a message that never came). It exists only when
``EMAIL_HOST`` is set (``PASSWORD_RESET_ENABLED``)."""

from __future__ import annotations

import pytest
from django.test import Client

from registryui.urls import PASSWORD_RESET_NAMES, account_urls

pytestmark = pytest.mark.django_db


def test_without_mail_the_reset_pages_do_not_exist(settings):
    assert not settings.PASSWORD_RESET_ENABLED  # no EMAIL_HOST in the test environment
    client = Client()
    for path in (
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/done/",
    ):
        assert client.get(path).status_code == 404, path
    response = client.post("/accounts/password_reset/", {"email": "root@example.com"})
    assert response.status_code == 404
    # Logging in and changing one's password are still there.
    assert client.get("/accounts/login/").status_code == 200


def test_with_mail_they_are_routed():
    names = {pattern.name for pattern in account_urls(password_reset=True)}
    assert PASSWORD_RESET_NAMES <= names and "login" in names
    without = {pattern.name for pattern in account_urls(password_reset=False)}
    assert not PASSWORD_RESET_NAMES & without
    assert {"login", "logout", "password_change", "password_change_done"} <= without
