"""``{% load attached %}``: the badges of what is attached to an image (signed, SBOM, ...).

``{% attached_badges manifest repository %}`` renders ``catalog/_badges.html``; a page that
lists many images sets ``manifest.badges`` for all of them at once first
(``browse.attached.annotate_badges``), otherwise the tag asks for this one image.
"""

from __future__ import annotations

from django import template

from registryui.catalog.artifacts import Kind
from registryui.catalog.referrers import badge_counts

register = template.Library()


@register.inclusion_tag("catalog/_badges.html")
def attached_badges(manifest, repository) -> dict:
    pairs = getattr(manifest, "badges", None)
    if pairs is None:
        counts = badge_counts(repository, [manifest.digest]).get(manifest.digest, {})
        pairs = [(kind, counts[kind.value]) for kind in Kind.ordered() if counts.get(kind.value)]
    return {"badges": pairs, "manifest": manifest}
