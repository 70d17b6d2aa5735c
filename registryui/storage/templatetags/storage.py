"""``{% load storage %}``: whether the nav shows the storage page to this visitor."""

from __future__ import annotations

from django import template

from registryui.teams.permissions import access_for

register = template.Library()


@register.filter
def sees_repositories(user) -> bool:
    """Any rule lets the visitor see some repository (no query: the resolver's cached rules)."""
    return bool(access_for(user).rules)
