"""Globs on repository names: ``*`` (any run of characters, ``/`` included), ``?`` (one
character) and ``[...]`` / ``[!...]`` classes — ``fnmatch.fnmatchcase`` semantics.

Each pattern is matched in Python (``matches``) and turned into a database filter
(``pattern_q``) that selects exactly the same names, so that lists and single checks agree.

Both come from one translation to a regular expression that SQLite (Django's Python
``REGEXP`` function), PostgreSQL (POSIX AREs) and Python read the same way: a class such as
``[a-f]`` or ``[!-]`` is expanded to the explicit list of repository-name characters it
accepts, so no engine's notion of ranges, collations or escapes inside brackets matters.
Repository names only ever contain ``a-z 0-9 . _ - /`` (the Distribution grammar), so
evaluating classes over those characters gives fnmatch's answer for every real name.

Python's ``re`` (and so SQLite's ``REGEXP``) backtracks: ``*a*a*a*a*a*a*b`` as plain ``.*``
takes minutes to fail on a long name of ``a``s, and names come from URLs and token scopes.
For those engines each ``*`` that more pattern follows becomes an atomic group, as in
``fnmatch.translate``; PostgreSQL's engine does not backtrack that way and has no atomic
groups, so it reads the plain form.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterable
from functools import lru_cache, reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q

#: Every character a repository name can contain.
NAME_CHARACTERS = string.ascii_lowercase + string.digits + "._-/"
PATTERN_MAX_LENGTH = 255

#: Up to this many ``prefix*`` patterns get an indexed LIKE each; more join the one regex.
PREFIX_TERMS_MAX = 16

_ALLOWED = re.compile(r"^[a-z0-9._/\-*?\[\]!]+$")
_WILDCARDS = frozenset("*?[")
STAR = None  # a run of '*' among the tokens of _translate


class PatternError(ValueError):
    """A glob that is not a usable repository pattern (the message says why)."""


def validate_pattern(pattern: str) -> None:
    """Raise ``ValidationError`` (a form/model error) unless ``pattern`` is usable."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        raise ValidationError(str(exc), code="invalid_pattern") from None


def is_literal(pattern: str) -> bool:
    """True when the pattern has no wildcard: it names exactly one repository."""
    return not any(ch in _WILDCARDS for ch in pattern)


def literal_prefix(pattern: str) -> str:
    """The characters before the first wildcard: every matching name starts with them."""
    for index, ch in enumerate(pattern):
        if ch in _WILDCARDS:
            return pattern[:index]
    return pattern


def _class_characters(body: str) -> str:
    """The name characters a bracket class accepts, in NAME_CHARACTERS order.

    ``fnmatch`` itself is the reference for what a class means (ranges, ``!``, a leading
    ``]``, a trailing ``-``), so the two can never disagree on a name.
    """
    probe = f"[{body}]"
    return "".join(ch for ch in NAME_CHARACTERS if fnmatch.fnmatchcase(ch, probe))


def _translate(pattern: str, *, atomic: bool = True) -> str:
    """The body of a regular expression with the same meaning in Python, SQLite and PostgreSQL.

    With ``atomic`` (for Python's backtracking ``re``), ``*`` followed by a segment and another
    ``*`` becomes ``(?>.*?segment)``: a segment between two stars has a fixed width, so its
    leftmost occurrence is always a right choice, and committing to it keeps a failing match
    from trying every split of the name among the stars. Without it (PostgreSQL), plain ``.*``.

    Raises ``PatternError`` for what cannot be a useful pattern.
    """
    if not pattern:
        raise PatternError("A pattern cannot be empty.")
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise PatternError(f"A pattern has at most {PATTERN_MAX_LENGTH} characters.")
    if not _ALLOWED.match(pattern):
        raise PatternError(
            f"{pattern!r} is not a repository pattern: use lowercase repository-name characters "
            "(a-z 0-9 . _ - /) and the wildcards * ? [ ]."
        )
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if not out or out[-1] is not STAR:  # runs of * mean the same as one
                out.append(STAR)
        elif char == "?":
            out.append(".")
        elif char == "[":
            # Find the closing bracket exactly as fnmatch.translate does: a ']' right after
            # '[' or '[!' is a member of the class, not its end.
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise PatternError(
                    f"{pattern!r} has a '[' without its closing ']' (a repository name "
                    "cannot contain '[')."
                )
            body = pattern[i:j]
            i = j + 1
            members = _class_characters(body)
            if not members:
                raise PatternError(
                    f"{pattern!r}: the class [{body}] matches no character a repository name "
                    "can contain."
                )
            if len(members) == 1:
                out.append(r"\." if members == "." else members)
            else:
                # '-' goes last, where it is a literal in every engine; '.', '_' and '/' need
                # no escaping inside brackets.
                out.append("[" + members.replace("-", "") + ("-" if "-" in members else "") + "]")
        elif char in "]!":
            raise PatternError(
                f"{pattern!r}: {char!r} only has a meaning inside [...] (a repository name "
                "cannot contain it)."
            )
        else:
            out.append(r"\." if char == "." else char)
    return _join(out, atomic=atomic)


def _join(tokens: list[str | None], *, atomic: bool) -> str:
    """Tokens (``STAR`` for each run of ``*``) → a regular expression body."""
    segments: list[str] = []
    current: list[str] = []
    for token in tokens:
        if token is STAR:
            segments.append("".join(current))
            current = []
        else:
            current.append(token)
    segments.append("".join(current))
    head, *rest = segments  # the segments between stars; rest[i] follows the i-th star
    body = [head]
    for index, segment in enumerate(rest):
        last = index == len(rest) - 1
        body.append(f".*{segment}" if last or not atomic else f"(?>.*?{segment})")
    return "".join(body)


def _anchored(bodies: list[str]) -> str:
    """One regex for names matching any of ``bodies`` from the first character to the last.

    (?s) lets '.' match any character in Python, SQLite's REGEXP (Python's re without flags)
    and PostgreSQL alike; \\Z is the very end of the string in all three ('$' also matches
    before a final newline in Python).
    """
    alternatives = bodies[0] if len(bodies) == 1 else "(?:" + "|".join(bodies) + ")"
    return rf"(?s)^{alternatives}\Z"


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_anchored([_translate(pattern)]))


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled regular expression of a pattern (``PatternError`` when it is unusable)."""
    try:
        return _compiled(pattern)
    except re.error as exc:  # pragma: no cover - the translation only emits valid syntax
        raise PatternError(f"{pattern!r} is not a valid pattern: {exc}") from None


def matches(pattern: str, name: str) -> bool:
    """True when the repository ``name`` matches ``pattern`` (False for an unusable pattern)."""
    try:
        return compile_pattern(pattern).match(name) is not None
    except PatternError:
        return False


def pattern_q(pattern: str, field: str = "name") -> Q:
    """A filter selecting the names that ``matches(pattern, name)`` accepts.

    Exact names and ``prefix*`` use plain indexed comparisons; anything else a regex.
    """
    try:
        compile_pattern(pattern)
    except PatternError:
        return Q(pk__in=[])  # an unusable pattern (never saved through validation) matches nothing
    if is_literal(pattern):
        return Q(**{field: pattern})
    if set(pattern) == {"*"}:
        return Q(**{f"{field}__isnull": False})
    head = pattern.rstrip("*")
    if pattern.endswith("*") and is_literal(head):
        # LIKE 'prefix%' (Django escapes _ and %). SQLite's LIKE ignores ASCII case, which
        # cannot matter: names and patterns are lowercase by the grammar.
        return Q(**{f"{field}__startswith": head})
    return Q(**{f"{field}__regex": _anchored([_translate(pattern, atomic=_atomic_db())])})


def _atomic_db() -> bool:
    """Atomic groups for SQLite (its REGEXP is Python's re), none for PostgreSQL's AREs."""
    return connection.vendor != "postgresql"


def patterns_q(patterns: Iterable[str], field: str = "name") -> Q | None:
    """One filter for the names that match any of ``patterns``; None means every name.

    However many patterns there are, the filter has a bounded number of conditions: exact
    names in one ``IN``, a few ``prefix*`` as indexed LIKEs, everything else in one regex
    alternation. (One condition per pattern would exceed SQLite's expression depth of 1000
    for a user with many grants, and make PostgreSQL plan a long OR.)
    """
    exact: list[str] = []
    prefixes: list[str] = []
    others: list[str] = []
    for pattern in dict.fromkeys(patterns):
        try:
            compile_pattern(pattern)
        except PatternError:
            continue  # never saved through validation; it would match nothing anyway
        head = pattern.rstrip("*")
        if set(pattern) == {"*"}:
            return None
        if is_literal(pattern):
            exact.append(pattern)
        elif pattern.endswith("*") and is_literal(head):
            prefixes.append(head)
        else:
            others.append(pattern)
    if len(prefixes) > PREFIX_TERMS_MAX:
        others.extend(f"{head}*" for head in prefixes)
        prefixes = []
    terms: list[Q] = []
    if exact:
        terms.append(Q(**{f"{field}__in": exact}) if len(exact) > 1 else Q(**{field: exact[0]}))
    terms.extend(Q(**{f"{field}__startswith": head}) for head in prefixes)
    if others:
        atomic = _atomic_db()
        regex = _anchored([_translate(pattern, atomic=atomic) for pattern in others])
        terms.append(Q(**{f"{field}__regex": regex}))
    if not terms:
        return Q(pk__in=[])
    return reduce(or_, terms)


def covers(outer: str, inner: str) -> bool:
    """True when every name matching ``inner`` also matches ``outer``.

    Sound but deliberately incomplete (it may answer False for some real inclusions): it is
    what limits the grants a team admin may hand out to what they administer, so it must
    never answer True wrongly. It recognises the shapes grants take in practice: the same
    pattern, ``*``, ``prefix*`` around anything that starts with that prefix, and a single
    repository name inside any pattern.
    """
    try:
        compile_pattern(outer)
        compile_pattern(inner)
    except PatternError:
        return False
    if outer == inner or set(outer) == {"*"}:
        return True
    if is_literal(inner):
        return matches(outer, inner)
    head = outer.rstrip("*")
    if outer.endswith("*") and is_literal(head):
        return literal_prefix(inner).startswith(head)
    return False
