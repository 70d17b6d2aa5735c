"""Cursor pagination: opaque, signed cursors over a stable order (keyset, not offsets).

A cursor holds the sort and the sort key of the last item of its page; the next page is
"everything after that key" in the same order, so rows inserted or deleted meanwhile never
shift an item onto two pages or off both. Every ordering ends with the primary key, which
makes the order total. Cursors are signed (``django.core.signing``): one that was altered,
or made for another list or sort, is a 400, never a 500 or a wrong page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import OrderBy

from .problems import Code, Problem

_SALT = "registryui.api.cursor"


@dataclass(frozen=True)
class Key:
    field: str
    descending: bool = False
    #: Where NULLs sort (None: the column is never NULL).
    nulls_first: bool | None = None


def keys_of(ordering: Sequence[Any]) -> list[Key]:
    """``("name",)``, ``("-size", "name")`` or ``F(...).asc(nulls_first=True)`` → keys, with the
    primary key appended so that the order is total."""
    keys = []
    for item in ordering:
        if isinstance(item, str):
            keys.append(Key(item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, OrderBy) and isinstance(item.expression, F):
            nulls_first = True if item.nulls_first else False if item.nulls_last else None
            keys.append(Key(item.expression.name, item.descending, nulls_first))
        else:  # pragma: no cover - a programming error in a sort table
            raise TypeError(f"cannot page over {item!r}")
    if keys[-1].field not in ("pk", "id"):
        keys.append(Key("id"))
    return keys


def order_by(keys: Sequence[Key]) -> list[OrderBy]:
    out = []
    for key in keys:
        expression = F(key.field)
        extra = {}
        if key.nulls_first is True:
            extra["nulls_first"] = True
        elif key.nulls_first is False:
            extra["nulls_last"] = True
        out.append(expression.desc(**extra) if key.descending else expression.asc(**extra))
    return out


def _after(key: Key, value: Any) -> Q:
    """Rows strictly after ``value`` on this one key."""
    if value is None:
        # After NULL: the non-NULL values when NULLs come first, nothing when they come last.
        return Q(**{f"{key.field}__isnull": False}) if key.nulls_first else Q(pk__in=[])
    after = Q(**{f"{key.field}__{'lt' if key.descending else 'gt'}": value})
    if key.nulls_first is False:
        after |= Q(**{f"{key.field}__isnull": True})
    return after


def _equal(key: Key, value: Any) -> Q:
    return Q(**{f"{key.field}__isnull": True}) if value is None else Q(**{key.field: value})


def after(keys: Sequence[Key], values: Sequence[Any]) -> Q:
    """Rows after ``values`` in the lexicographic order of ``keys``."""
    condition = Q(pk__in=[])
    equal = Q()
    for key, value in zip(keys, values, strict=True):
        condition |= equal & _after(key, value)
        equal &= _equal(key, value)
    return condition


def _value_of(obj: Any, field: str) -> Any:
    for part in field.split("__"):
        obj = getattr(obj, part)
        if obj is None:
            return None
    return obj


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _load(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    return value


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


def paginate(
    queryset: QuerySet, ordering: Sequence[Any], *, cursor: str | None, limit: int, scope: str
) -> Page:
    """One page of ``queryset`` in ``ordering`` after ``cursor``. ``scope`` names the list and
    its sort and filters: a cursor is good only for the list it was made for."""
    keys = keys_of(ordering)
    queryset = queryset.order_by(*order_by(keys))
    if cursor:
        try:
            data = signing.loads(cursor, salt=_SALT)
            if data.get("s") != scope:
                raise ValueError("another list")
            values = [_load(v) for v in data["v"]]
            condition = after(keys, values)
        except (signing.BadSignature, ValueError, KeyError, TypeError, AttributeError):
            raise Problem(
                400,
                Code.INVALID_CURSOR,
                "The cursor is not one this list gave out (it is opaque: pass back "
                "next_cursor as it came, with the same sort and filters).",
                errors=[{"field": "query.cursor", "message": "Not a cursor of this list."}],
            ) from None
        queryset = queryset.filter(condition)
    rows = list(queryset[: limit + 1])
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        values = [_dump(_value_of(last, key.field)) for key in keys]
        next_cursor = signing.dumps({"s": scope, "v": values}, salt=_SALT, compress=True)
    return Page(items, next_cursor)
