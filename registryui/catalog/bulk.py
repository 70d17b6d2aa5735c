"""Inserting many new rows cheaply: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere.

The sync writes a repository's rows on the one thread that also hands out every request, so
the Python time spent building an ``INSERT`` is time its fetch threads wait. ``bulk_create``
prepares each value through its field and psycopg then quotes each one into the statement
(on PostgreSQL, Django 5.2 sends ``UNNEST`` arrays whose text elements psycopg escapes one by
one): about six times the CPU of the same rows sent through ``COPY``, whose text format
psycopg writes in C.

``COPY`` has no ``ON CONFLICT``: it is for rows that cannot conflict with another writer's,
such as the children of a row this transaction has just inserted (a manifest's layers, a new
repository's tags). A caller that cannot be sure runs it inside a savepoint and falls back to
``bulk_create(ignore_conflicts=True)`` on ``IntegrityError`` (see ``catalog.store``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, connection, models, transaction

#: Rows per ``bulk_create`` batch where ``COPY`` is not used (SQLite's parameter limit).
BATCH_SIZE = 500


def copies() -> bool:
    """Whether ``insert`` uses ``COPY`` on this database."""
    return connection.vendor == "postgresql"


def insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert these unsaved instances, every concrete column but the primary key as set on
    them (their defaults were applied when they were built). Their ``pk`` stays unset.

    The rows must be new: a conflict raises ``IntegrityError`` (and on PostgreSQL aborts the
    transaction, or the savepoint around the call)."""
    if not objs:
        return
    if not copies():
        model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        return
    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key and not getattr(f, "generated", False)
    ]
    getters = [_getter(field) for field in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor:
        # ``debug_sql`` (when queries are logged: DEBUG, tests' query counts) records the
        # COPY as one query, as a ``bulk_create`` batch would be.
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else nullcontext()
        with logged, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for obj in objs:
                copy.write_row([get(obj) for get in getters])


def insert_or_skip(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert these unsaved instances, skipping any whose unique key another row holds.

    For rows the caller has just looked for and not found, which a concurrent writer may
    still insert first: on PostgreSQL a ``COPY`` inside a savepoint, and only if one of them
    is there by then (``IntegrityError``), ``bulk_create(ignore_conflicts=True)``."""
    if not objs:
        return
    if copies():
        try:
            with transaction.atomic():
                insert(model, objs)
        except IntegrityError:
            pass
        else:
            return
    model.objects.bulk_create(objs, batch_size=BATCH_SIZE, ignore_conflicts=True)


def _getter(field: models.Field) -> Callable[[models.Model], Any]:
    """How to read one column's value off an instance, as COPY's text format takes it.

    psycopg writes ``str``, ``int``, ``bool``, aware ``datetime`` and ``None`` itself; a JSON
    column is encoded here with the field's encoder, as ``JSONField`` would."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        raise TypeError(f"{field} is set on save; insert() does not call pre_save")
    if field.db_default is not models.NOT_PROVIDED:
        raise TypeError(f"{field} has a database default; insert() writes every column")
    attname = field.attname
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def get_json(obj: models.Model) -> str | None:
            value = getattr(obj, attname)
            return None if value is None else json.dumps(value, cls=encoder)

        return get_json
    return lambda obj: getattr(obj, attname)
