"""The UI's own registry requests in events (``registryui.events.own``): its user agent alone
proves nothing; when the UI authenticates, the registry must name its account too.

Both endpoints are driven with event bodies in the shape 2.8 posts (as their other tests are);
``test_own_requests_live.py`` has the real registry send them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from registryui.events.handler import Event
from registryui.events.models import PullDay, PullTracking
from registryui.events.own import APP_SUBJECT, made_by_this_ui, own_account
from registryui.registry.client import USER_AGENT
from registryui.tokens.principals import APP_SUBJECT as TOKENS_APP_SUBJECT

from .support import TOKEN, V1, pull_event

DIGEST = "sha256:" + "ab" * 32


def test_the_app_subject_is_the_token_servers():
    assert APP_SUBJECT == TOKENS_APP_SUBJECT


@pytest.mark.parametrize(
    ("username", "token_auth", "account"),
    [("", False, ""), ("registryui-sync", False, "registryui-sync"), ("", True, APP_SUBJECT)],
)
def test_the_account_the_registry_names_for_the_ui(settings, username, token_auth, account):
    settings.REGISTRY_USERNAME = username
    settings.TOKEN_AUTH_ENABLED = token_auth
    assert own_account() == account


def test_without_credentials_the_user_agent_decides(settings):
    """Nothing else to go on: a registry the UI reaches anonymously names nobody."""
    settings.REGISTRY_USERNAME = ""
    settings.TOKEN_AUTH_ENABLED = False
    assert made_by_this_ui(USER_AGENT, "")
    assert not made_by_this_ui("docker/27.0", "")
    assert not made_by_this_ui("skopeo/1.9.3", "registryui-sync")


def test_with_credentials_the_account_must_match_too(settings):
    settings.REGISTRY_USERNAME = "registryui-sync"
    settings.TOKEN_AUTH_ENABLED = False
    assert made_by_this_ui(USER_AGENT, "registryui-sync")
    assert not made_by_this_ui(USER_AGENT, "mallory")  # the agent, spoofed
    assert not made_by_this_ui(USER_AGENT, "")  # anonymous, spoofed
    assert not made_by_this_ui("docker/27.0", "registryui-sync")  # a person with its account
    settings.TOKEN_AUTH_ENABLED = True
    assert made_by_this_ui(USER_AGENT, APP_SUBJECT)
    assert not made_by_this_ui(USER_AGENT, "registryui-sync")


def test_a_push_events_by_this_ui_asks_the_same(settings):
    settings.REGISTRY_USERNAME = "registryui-sync"
    settings.TOKEN_AUTH_ENABLED = False
    event = Event("1", "delete", "team-a/api", "", DIGEST, None, "mallory", USER_AGENT)
    assert not event.by_this_ui
    own = Event("2", "delete", "team-a/api", "", DIGEST, None, "registryui-sync", USER_AGENT)
    assert own.by_this_ui


def deliver_pulls(*events):
    return Client().post(
        "/events/registry/pulls",
        data=json.dumps({"events": list(events)}),
        content_type=V1,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def pull(agent: str, actor: str) -> dict:
    event = pull_event("team-a/api", "1.0", DIGEST)
    event["request"] = {"method": "GET", "useragent": agent}
    event["actor"] = {"name": actor} if actor else {}
    return event


@pytest.mark.django_db
def test_a_spoofed_user_agent_does_not_hide_a_pull(settings):
    settings.PULL_TRACKING = True
    settings.REGISTRY_EVENTS_TOKEN = TOKEN
    settings.REGISTRY_USERNAME = "registryui-sync"
    answer = deliver_pulls(
        pull(USER_AGENT, "registryui-sync"),  # the UI's own: left out
        pull(USER_AGENT, "mallory"),  # another account with the UI's agent: a pull
        pull(USER_AGENT, ""),  # anonymous with the UI's agent: a pull
    )
    assert answer.json() == {"own": 1, "counted": 2}
    assert sorted(PullDay.objects.values_list("actor", "count")) == [("", 1), ("mallory", 1)]
    assert PullTracking.load().own == 1
