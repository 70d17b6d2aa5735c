"""The site-wide template helpers: sizes, dates, numbers, digests, sorting, reference URLs.

``{% load core %}`` in any template. Helpers that belong to one kind of page stay with it
(``{% load catalog %}`` for the browse pages, ``{% load cleanup %}``, ``{% load access %}``
for what the resolver allows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from registryui.lib import humanize
from registryui.lib.reference import reference_url as _reference_url
from registryui.lib.reference import short_digest

register = template.Library()


@register.filter
def iec_size(value: Any) -> str:
    """Bytes in binary units (``registryui.lib.humanize.iec_size``)."""
    return humanize.iec_size(value)


#: Units of a relative date, largest first; a month is 30 days and a year 365 (close enough
#: for "3 months ago", and much cheaper than calendar arithmetic on a page of 50 rows).
_STEPS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (7 * 86400, "week"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
)


@register.filter
def relative(value: datetime | None, now: datetime | None = None) -> str:
    """``3 days ago`` / ``in 2 hours`` / ``just now``; an em dash when unknown."""
    if not value:
        return "—"
    seconds = ((now or timezone.now()) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    for size, unit in _STEPS:  # noqa: B007 - the loop stops at the unit it needs
        if seconds >= size:
            break
    amount = int(seconds // size)
    text = f"{amount} {unit}{'' if amount == 1 else 's'}"
    return f"in {text}" if future else f"{text} ago"


@register.filter
def absolute(value: datetime | None) -> str:
    if not value:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


@register.filter
def when(value: datetime | None) -> str:
    """A relative date with the absolute one on hover (and for machines, in ``datetime``)."""
    if not value:
        return _UNKNOWN
    # Built by hand, not with format_html: this runs several times per table row, and the
    # three parts are made here from a datetime (nothing to escape).
    return mark_safe(  # noqa: S308 - isoformat/strftime/relative output only
        f'<time datetime="{value.isoformat()}" title="{absolute(value)}">{relative(value)}</time>'
    )


_UNKNOWN = mark_safe('<span class="unknown" title="unknown">—</span>')


@register.filter
def thousands(value: Any) -> str:
    """``12345`` → ``12,345`` (cheaper than humanize's intcomma, which localizes)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""


@register.filter
def share(part: Any, total: Any) -> float:
    """``part`` as a percentage of ``total`` (0 when the total is unknown)."""
    try:
        part_f, total_f = float(part), float(total)
    except (TypeError, ValueError):
        return 0.0
    if total_f <= 0:
        return 0.0
    return round(100 * part_f / total_f, 1)


@register.filter
def short_hex(digest: str, length: int = 12) -> str:
    """``sha256:0123…`` → its first ``length`` hex characters."""
    return short_digest(digest or "", int(length))


@register.filter
def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


@register.simple_tag(takes_context=True)
def sort_header(context, label: str, key: str, current: str, default_desc: bool = False) -> str:
    """A sortable column header link; clicking the current column flips its direction.

    Renders the link only; the ``<th>`` carries ``aria-sort`` (see ``aria_sort``).
    """
    request = context["request"]
    active = current.lstrip("-") == key
    descending = current.startswith("-")
    if active:
        target = key if descending else f"-{key}"
    else:
        target = f"-{key}" if default_desc else key
    query = request.GET.copy()
    query["sort"] = target
    query.pop("page", None)
    arrow = ("▼" if descending else "▲") if active else ""
    href = f"?{query.urlencode()}"
    return format_html(
        '<a href="{}" hx-get="{}" class="sort{}">{}'
        '<span class="arrow" aria-hidden="true">{}</span></a>',
        href,
        href,
        " active" if active else "",
        label,
        arrow,
    )


@register.simple_tag
def aria_sort(key: str, current: str) -> str:
    if current.lstrip("-") != key:
        return "none"
    return "descending" if current.startswith("-") else "ascending"


@register.filter
def duration(seconds: Any) -> str:
    """``3600`` → ``1 hour``; ``5400`` → ``1 hour, 30 minutes``."""
    try:
        total = int(seconds)
    except (TypeError, ValueError):
        return ""
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount} {unit}{'s' if amount != 1 else ''}")
        if len(parts) == 2:
            break
    return ", ".join(parts) or "0 seconds"


@register.simple_tag
def reference_url(
    name: str, tag: str | None = None, digest: str | None = None, action: str | None = None
) -> str:
    """``{% reference_url repository.name tag=tag.name action="delete" %}``: the one way a
    template builds a ``/r/…`` URL (``registryui.lib.reference.reference_url``)."""
    return _reference_url(str(name), tag=tag or None, digest=digest or None, action=action)
