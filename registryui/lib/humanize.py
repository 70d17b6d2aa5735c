"""Numbers for people: sizes in binary units (KiB, MiB, ...), everywhere in the product."""

from __future__ import annotations

from typing import Any

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def iec_size(value: Any) -> str:
    """Bytes in binary units: ``1536`` → ``1.50 KiB``; ``None`` or junk → an em dash."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        return "—"
    if size < 1024:
        return f"{size} B"
    amount = float(size)
    index = -1
    while amount >= 1024 and index < len(_UNITS) - 1:
        amount /= 1024
        index += 1
    unit = _UNITS[index]
    # Three significant figures read well in a table column: 1.50 KiB, 15.0 MiB, 150 GiB.
    if amount < 10:
        return f"{amount:.2f} {unit}"
    if amount < 100:
        return f"{amount:.1f} {unit}"
    return f"{amount:.0f} {unit}"
