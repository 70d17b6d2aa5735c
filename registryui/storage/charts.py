"""Server-rendered SVG charts: geometry here, markup in ``templates/storage/_*.html``.

No JavaScript and no inline styles (the CSP forbids them): the templates draw with SVG
presentation attributes (coordinates, sizes) and colour through CSS classes, whose custom
properties follow the light and dark themes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from registryui.lib.humanize import iec_size

#: The line chart's drawing box (the SVG scales to its container).
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 112, 24, 16, 44


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    path: str
    area: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^k of a binary unit (B, KiB, MiB, ...) at or above
    ``value``, so that the axis reads 0, 50, 100, 150, 200 KiB."""
    if value <= 0:
        return 1
    unit = 1
    while value >= unit * 1000 and unit < 1024**5:
        unit *= 1024
    amount = value / unit
    step = 1
    while step * 10 <= amount:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= amount:
            return step * factor * unit
    return step * 10 * unit


def _time_format(span: float) -> str:
    if span >= 2 * 86400:
        return "%Y-%m-%d"
    if span >= 3600:
        return "%m-%d %H:%M"
    return "%H:%M:%S"


def line_chart(points: list[tuple[datetime, int]]) -> LineChart | None:
    """A step line (a value holds until the next snapshot) of bytes over time."""
    if len(points) < 2:
        return None
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    top_value = _nice_ceiling(max(value for _, value in points))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return round(LEFT + inner_w * (moment - start).total_seconds() / span, 1)

    def y(value: int) -> float:
        return round(TOP + inner_h * (1 - value / top_value), 1)

    commands = [f"M{x(points[0][0])},{y(points[0][1])}"]
    for (_, previous), (moment, value) in itertools.pairwise(points):
        commands.append(f"H{x(moment)}")
        if value != previous:
            commands.append(f"V{y(value)}")
    path = " ".join(commands)
    area = f"{path} V{y(0)} H{x(start)} Z"
    y_ticks = [Tick(y(top_value * i // 4), iec_size(top_value * i // 4)) for i in range(5)]
    fmt = _time_format(span)
    x_ticks = [Tick(x(start), start.strftime(fmt)), Tick(x(end), end.strftime(fmt))]
    return LineChart(path, area, y_ticks, x_ticks)


@dataclass(frozen=True)
class Bar:
    """One bar, out of 1000 (the viewBox's width): the exclusive part, then the shared part."""

    exclusive: int
    shared: int

    @property
    def shared_x(self) -> int:
        return self.exclusive


def bar(figure, largest: int) -> Bar:
    """The bar of a ``figures.Figure`` against the largest referenced bytes of its list."""
    if largest <= 0 or figure.referenced <= 0:
        return Bar(0, 0)
    total = max(round(1000 * figure.referenced / largest), 2)
    exclusive = round(total * figure.exclusive / figure.referenced)
    return Bar(exclusive, total - exclusive)
