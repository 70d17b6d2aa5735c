"""Globs on repository names: ``*`` (any run of characters, ``/`` included), ``?`` (one
character) and ``[...]`` / ``[!...]`` classes — ``fnmatch.fnmatchcase`` semantics.

Each pattern is matched in Python (``matches``) and turned into a database filter
(``pattern_q``) that selects exactly the same names, so that lists and single checks agree.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db.models import Q

_ALLOWED = re.compile(r"^[a-z0-9._/\-*?\[\]!]+$")
_WILDCARDS = set("*?[")


def validate_pattern(pattern: str) -> None:
    if not pattern or not _ALLOWED.match(pattern):
        raise ValidationError(
            f"{pattern!r} is not a repository pattern: use lowercase repository-name characters "
            "(a-z 0-9 . _ - /) and the wildcards * ? [ ]."
        )
    try:
        compile_pattern(pattern)
    except re.error as exc:
        raise ValidationError(f"{pattern!r} is not a valid pattern: {exc}") from None


def _translate(pattern: str) -> str:
    """The body of a regular expression, valid both for Python and PostgreSQL (POSIX ARE)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not out or out[-1] != ".*":  # collapse runs of * (same meaning, less work)
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")  # an unclosed [ is a literal, as in fnmatch
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            chars = body.replace("\\", r"\\").replace("[", r"\[").replace("]", r"\]")
            if negate:
                out.append(f"[^{chars}]" if chars else ".")
            else:
                out.append(f"[{chars}]")
        else:
            out.append(re.escape(char) if char in ".[]\\^$+{}()|" else char)
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^{_translate(pattern)}$", re.DOTALL)


def matches(pattern: str, name: str) -> bool:
    return compile_pattern(pattern).match(name) is not None


def pattern_q(pattern: str, field: str = "name") -> Q:
    """A filter selecting the names that ``matches(pattern, name)`` accepts.

    Exact names and ``prefix*`` use plain indexed comparisons; anything else a regex.
    """
    if not any(ch in _WILDCARDS for ch in pattern):
        return Q(**{field: pattern})
    if pattern == "*" or set(pattern) == {"*"}:
        return Q(**{f"{field}__isnull": False})
    head = pattern.rstrip("*")
    if pattern.endswith("*") and not any(ch in _WILDCARDS for ch in head):
        # LIKE 'prefix%' (Django escapes _ and %). SQLite's LIKE ignores ASCII case, which
        # cannot matter: names and patterns are lowercase by the grammar.
        return Q(**{f"{field}__startswith": head})
    return Q(**{f"{field}__regex": compile_pattern(pattern).pattern})
