"""Template helpers that ask the resolver, so templates never decide access themselves.

{% load access %}
{% capabilities repository.name as can %}
{% if can.delete %}<a class="button danger" href="…">Delete</a>{% endif %}
"""

from __future__ import annotations

from django import template

from registryui.teams import permissions

register = template.Library()


@register.simple_tag(takes_context=True)
def capabilities(context, name: str) -> permissions.Capabilities:
    """What the current user may do on the repository called ``name``."""
    request = context.get("request")
    user = getattr(request, "user", None) if request is not None else context.get("user")
    return permissions.capabilities(user, name)
