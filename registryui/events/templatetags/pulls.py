"""``{% load pulls %}``: pull activity on the repository and tag pages (issue 16).

Each tag asks the resolver itself (the repository must be visible to the viewer), so the
partials that use them need nothing but their object in the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django import template
from django.conf import settings

from registryui.events import activity
from registryui.teams.models import Level
from registryui.teams.permissions import can

register = template.Library()

#: The sparkline's box in SVG user units: wide and short, scaled by CSS to its container.
WIDTH, HEIGHT, PAD = 300, 40, 2


@dataclass
class Sparkline:
    days: list[tuple[date, int]]
    points: str
    area: str
    total: int
    peak: int
    #: Where the last day's dot sits.
    last_x: float
    last_y: float

    @property
    def first(self) -> date:
        return self.days[0][0]

    @property
    def last(self) -> date:
        return self.days[-1][0]

    @property
    def today(self) -> int:
        return self.days[-1][1]


def sparkline(days: list[tuple[date, int]]) -> Sparkline:
    """Polyline points of the daily counts, scaled into the box (zero at the bottom)."""
    peak = max((n for _, n in days), default=0)
    step = (WIDTH - 2 * PAD) / max(len(days) - 1, 1)
    coordinates = []
    for i, (_, n) in enumerate(days):
        x = PAD + i * step
        y = HEIGHT - PAD - ((HEIGHT - 2 * PAD) * n / peak if peak else 0)
        coordinates.append((round(x, 1), round(y, 1)))
    points = " ".join(f"{x},{y}" for x, y in coordinates)
    base = HEIGHT - PAD
    area = f"{coordinates[0][0]},{base} {points} {coordinates[-1][0]},{base}"
    return Sparkline(
        days=days,
        points=points,
        area=area,
        total=sum(n for _, n in days),
        peak=peak,
        last_x=coordinates[-1][0],
        last_y=coordinates[-1][1],
    )


@register.inclusion_tag("events/_pull_sparkline.html", takes_context=True)
def pull_sparkline(context, repository, days: int = 30):
    """Pulls per day of ``repository`` over the last ``days`` days, as an inline SVG."""
    user = context.get("user")
    if not settings.PULL_TRACKING or not can(user, Level.VIEW, repository.name):
        return {"shown": False}
    return {
        "shown": True,
        "repository": repository,
        "line": sparkline(activity.daily(repository.name, days=days)),
        "since": activity.tracking_since(),
        "width": WIDTH,
        "height": HEIGHT,
    }


@register.inclusion_tag("events/_tag_pulls.html", takes_context=True)
def tag_pulls(context, tag, manifest):
    """Facts about a tag's pushes and its image's pulls, for the tag page's ``<dl>``."""
    user = context.get("user")
    name = context["repository"].name
    if not can(user, Level.VIEW, name):
        return {"shown": False}
    if not settings.PULL_TRACKING:
        return {"shown": True, "tracking": False, "tag": tag}
    image = activity.by_image(name, [manifest.digest]).get(manifest.digest, activity.NEVER)
    return {
        "shown": True,
        "tracking": settings.PULL_TRACKING,
        "tag": tag,
        "image": image,
        "by_tag": activity.by_tag(name, tag.name, manifest.digest) if tag else None,
        "pullers": activity.pullers(name, manifest.digest, limit=5),
        "since": activity.tracking_since(),
    }
