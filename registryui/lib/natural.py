"""Natural order for tag names (``build-2`` before ``build-10``), as a string the database sorts.

``natural_key(name)`` is stored beside each tag (``Tag.sort_key``, written by
``catalog.store``) so that a paginated query orders by it with an index, on SQLite and on
PostgreSQL alike. The key uses only ``0-9`` and ``a-z``: on those characters every collation
we meet (SQLite's BINARY, PostgreSQL's "C" and the linguistic ones such as ``en_US.UTF-8``,
which ignore punctuation and fold case) agrees with code-point order, so the database's order
is the key's order.

Encoding, token by token:

- a run of digits: ``0``, its length without leading zeros in two base-36 digits, then those
  digits (a longer number is a bigger one; ``007`` and ``7`` tie, the name breaks the tie);
- any other character: its code point in two base-36 digits, each at least ``19`` (``-`` is
  45), so text always sorts after a number at the same place.

A key is at most 3 x 128 characters (``1.1.1…``: 64 numbers, 63 dots).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The longest key a 128-character tag can give (see the module docstring).
MAX_KEY_LENGTH = 400

_RUNS = re.compile(r"(\d+)|(\D)")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _two(value: int) -> str:
    return _B36[value // 36] + _B36[value % 36]


def natural_key(name: str) -> str:
    parts: list[str] = []
    for digits, other in _RUNS.findall(name):
        if digits:
            significant = digits.lstrip("0") or "0"
            parts.append("0" + _two(min(len(significant), 36 * 36 - 1)) + significant)
        else:
            parts.append(_two(min(ord(other), 36 * 36 - 1)))
    return "".join(parts)[:MAX_KEY_LENGTH]


def natural_sorted(names: Iterable[str]) -> list[str]:
    """Names in natural order (for short lists already in memory: siblings, confirmations)."""
    return sorted(names, key=lambda name: (natural_key(name), name))
