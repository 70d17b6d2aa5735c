"""The one template tag that asks the resolver, so templates never decide access themselves.

{% load access %}
{% access repository as access %}
{% if access.delete %}<a class="button danger" href="…">Delete</a>{% endif %}

Partials call it themselves, so that including one needs nothing but the tag or repository in
the context.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template

from registryui.catalog.models import Tag
from registryui.teams.models import Level
from registryui.teams.permissions import Capabilities, level_on

register = template.Library()


@dataclass(frozen=True)
class Access(Capabilities):
    """``Capabilities`` (``view``, ``push``, ``delete``, ``admin``) of the repository ``name``."""

    name: str = ""


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


@register.simple_tag(name="access", takes_context=True)
def access_tag(context, subject) -> Access:
    """What the current user may do on a repository (given as a Repository, a Tag or a name).

    Only signed-in users can change anything: an anonymous visitor may at most view, whatever
    the anonymous patterns say.
    """
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    name = _repository_name(context, subject)
    if user is None or not name:
        return Access(0, name)
    level = level_on(user, name)
    if not user.is_authenticated:
        level = min(level, Level.VIEW)
    return Access(level, name)
