"""Template helpers of the cleanup pages and of the partials other pages include.

The partials ask the resolver themselves (``cleanup_access``), so that including one needs
nothing but the tag or repository in the context.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from registryui.catalog.models import Tag
from registryui.lib.humanize import iec_size
from registryui.teams.permissions import capabilities

register = template.Library()


@dataclass(frozen=True)
class CleanupAccess:
    name: str
    can_push: bool
    can_delete: bool


def _repository_name(context, subject) -> str:
    """The repository name of a Repository, a Tag, or a name; for a tag, the context's
    ``repository`` is used when it is the tag's, so a table of tags costs no query per row."""
    if isinstance(subject, str):
        return subject
    if isinstance(subject, Tag):
        page_repository = context.get("repository")
        if getattr(page_repository, "pk", None) == subject.repository_id:
            return page_repository.name
        return subject.repository.name
    return getattr(subject, "name", "") or ""


@register.simple_tag(takes_context=True)
def cleanup_access(context, subject) -> CleanupAccess:
    """What the current user may do on a repository (given as a Repository, a Tag or a name)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    name = _repository_name(context, subject)
    if user is None or not user.is_authenticated or not name:
        return CleanupAccess(name, False, False)
    can = capabilities(user, name)
    return CleanupAccess(name, can.push, can.delete)


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
