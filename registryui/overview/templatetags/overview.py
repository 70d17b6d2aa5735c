"""``{% load overview %}``: the overview panel's data for a repository the page already shows."""

from __future__ import annotations

from django import template

from registryui.overview.queries import overview_of

register = template.Library()


@register.simple_tag(takes_context=True)
def repository_overview(context, repository):
    """The overview of ``repository`` (already checked by the page's view), with whether the
    viewer starred it: ``{% repository_overview repository as overview %}``."""
    request = context.get("request")
    return overview_of(repository, getattr(request, "user", None))
