"""Orderings of a nullable time where unknown (NULL) counts as the oldest.

Going up, NULLs come first; going down, last. Both databases need it said: SQLite puts NULLs
first going up, PostgreSQL last, so a list (and a keyset cursor, ``api/cursors.py``, which reads
these orderings back) would otherwise differ between them.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.expressions import OrderBy


def ascending(field_name: str) -> OrderBy:
    return F(field_name).asc(nulls_first=True)


def descending(field_name: str) -> OrderBy:
    return F(field_name).desc(nulls_last=True)
