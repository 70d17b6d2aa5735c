"""The one boundary for text and times that come from a registry.

Anyone who may push anywhere controls manifest and config JSON, and registry notifications
carry what pushers wrote too. Everything read from such a document passes through here before
it reaches the database or a page. The rule is short so a reader can check it:

- text: NUL (PostgreSQL refuses it) and lone surrogates (neither database can encode them) are
  replaced with U+FFFD; nothing else changes;
- times: RFC 3339 (up to Go's nanoseconds) read as an aware UTC datetime; anything malformed,
  out of Python's range once converted to UTC, or before 1971 (reproducible builds write the
  epoch) is ``None``, meaning unknown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

REPLACEMENT = "\ufffd"
# NUL, and any surrogate code point: a str decoded from valid JSON holds surrogates only when
# they were escaped alone (``"\ud800"``); a proper pair is decoded to one astral character.
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD."""
    return _UNSAFE.sub(REPLACEMENT, value)


def text(value: Any, default: str = "") -> str:
    """A registry field read as text: ``str()`` of anything that is not ``None``, cleaned."""
    if value is None:
        return default
    return clean_text(value if isinstance(value, str) else str(value))


def clean_json(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys included) cleaned."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 with up to nanoseconds (Go's format) → an aware UTC datetime; None if unknown."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    stamp = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Python reads at most microseconds: trim a longer fraction.
    if "." in stamp:
        head, _, rest = stamp.partition(".")
        # Only the digits right after the dot: "+02:00" after them is the zone, not fraction.
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        stamp = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # "9999-12-31T23:59:59-23:59" parses, but is past datetime.max in UTC.
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if parsed.year < 1971:  # reproducible builds use the epoch: that is "unknown", not 1970
        return None
    return parsed
