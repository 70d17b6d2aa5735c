"""Template helpers of the cleanup pages: freed space, as exact as the viewer may see it.

What the viewer may do is asked with ``{% load access %}`` (``{% access subject as access %}``).
"""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from registryui.lib.humanize import iec_size

register = template.Library()


@register.filter
def bytes_freed(value) -> str:
    """``1.2 MB (1,234,567 bytes)``: readable, and exact for whoever checks."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return ""
    readable = iec_size(number)
    if number < 1024:  # "512 bytes" already is exact
        return readable
    return f"{readable} ({intcomma(number)} bytes)"


@register.filter
def seen_by(freed, user):
    """``freed|seen_by:user``: the figure this user may see (``Freed.as_seen_by``)."""
    as_seen_by = getattr(freed, "as_seen_by", None)
    return as_seen_by(user) if as_seen_by is not None else freed
