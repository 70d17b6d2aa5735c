"""Template helpers of the push and pull guidance: ``{% load push %}``.

``{% push_guide repository as guide %}`` builds the repository page's push panel from the
request (the user and the GET form), so the page's view needs nothing for it;
``|command_breaks`` shows a command whole, breakable only at spaces, ``/``, ``:`` and ``@``.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from registryui.browse import pushing
from registryui.browse.pushing import Guide, build_guide, has_any_access
from registryui.browse.pushing import push_contacts as _push_contacts

register = template.Library()

#: Split after these characters (a lookbehind keeps each with the part before it).
_BREAK_AFTER = re.compile(r"(?<=[/:@])")


@register.simple_tag(takes_context=True)
def push_guide(context, repository) -> Guide:
    """The guide for ``repository`` (a Repository) and the request's GET form."""
    request = context["request"]
    guide = build_guide(request.user, request.GET, repository=repository)
    guide.part = "push"  # the panel shows its pull commands apart (#push-pulls)
    return guide


@register.simple_tag(takes_context=True)
def has_access(context) -> bool:
    """Whether the current user may see any repository at all (their rules, not the catalog)."""
    return has_any_access(context["request"].user)


@register.filter
def command_breaks(text: str) -> SafeString:
    """A command that may wrap at its spaces and after each ``/``, ``:`` and ``@``, nowhere
    else: each part between those points is a ``<span class="seg">`` that never wraps (a
    browser would otherwise break ``--all-tags`` or ``team-a`` at the hyphen), with a
    ``<wbr>`` after it. A part wider than the box (a digest on a phone) scrolls in the box."""
    words = []
    for word in text.split(" "):
        parts = [p for p in _BREAK_AFTER.split(word) if p]
        words.append("<wbr>".join(f'<span class="seg">{escape(p)}</span>' for p in parts))
    return mark_safe(" ".join(words))  # noqa: S308 - every part escaped above


@register.simple_tag(takes_context=True)
def push_contacts(context) -> list[str]:
    """Whom the current user asks for access (``pushing.push_contacts``)."""
    return _push_contacts(context["request"].user)


@register.simple_tag(takes_context=True)
def may_push_somewhere(context) -> bool:
    return pushing.may_push_somewhere(context["request"].user)
