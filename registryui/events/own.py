"""The UI's own registry requests, told apart in the events the registry reports.

Both endpoints ask it: the push endpoint sends no webhook for a change the UI made itself (its
audit entry reports it), and the pull endpoint does not count the UI's own manifest GETs (the
sync, cleanup, the handler's fetches) as pulls.
"""

from __future__ import annotations

from django.conf import settings

from registryui.registry.client import APP_SUBJECT, USER_AGENT_PREFIX


def own_account() -> str:
    """The account the registry names (``actor.name``) for the UI's own requests: the app's
    token subject in token mode, else ``REGISTRY_USERNAME``; "" when the UI sends none."""
    if settings.TOKEN_AUTH_ENABLED:
        return APP_SUBJECT
    return settings.REGISTRY_USERNAME


def made_by_this_ui(user_agent: str, actor: str) -> bool:
    """Whether an event's request came from this UI's registry client.

    The user agent alone proves nothing: any client can send ``registryui/…`` to keep its
    pulls out of the counts or its changes out of the webhooks. When the UI authenticates to
    the registry, the registry itself names the account in ``actor.name``, which no client
    can choose without the UI's credentials: then both must match. A registry the UI reaches
    without credentials names nobody, so there is nothing else to go on: the user agent
    decides. (``REGISTRY_USERNAME`` must then be an account the registry checks: one it
    ignores would leave the UI's own events unrecognised, never anybody else's hidden.)
    """
    if not user_agent.startswith(USER_AGENT_PREFIX):
        return False
    account = own_account()
    return not account or actor == account
