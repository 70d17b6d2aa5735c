"""Structured logs: one JSON object per line on stdout, for Django, the worker and gunicorn.

Container platforms collect stdout and most log stores parse JSON lines, so every record
becomes ``{"time", "level", "logger", "message", ...}`` plus the fields that explain it: the
request of a ``django.request`` error, the parsed access-log fields of ``gunicorn.access``,
``extra={...}`` fields a caller passed, and the traceback of an exception.

This module imports nothing from Django: gunicorn's master process loads it from
``gunicorn.conf.py`` before (and without) setting Django up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

#: Attributes every LogRecord has; anything else on a record came from ``extra={...}``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName"}
)

#: gunicorn's access-log atoms (see its ``access_log_format``) and the names we log them as.
_ACCESS_ATOMS = {
    "h": "remote_addr",
    "m": "method",
    "U": "path",
    "q": "query",
    "H": "protocol",
    "s": "status",
    "B": "bytes",
    "f": "referer",
    "a": "user_agent",
    "M": "duration_ms",
}


def _jsonable(value: Any) -> Any:
    """``extra`` values may be anything; keep JSON types, describe the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _request_fields(request: Any) -> dict[str, Any]:
    """What a Django request contributes to a log line (``django.request`` passes it)."""
    fields: dict[str, Any] = {}
    for name, attr in (("method", "method"), ("path", "path")):
        value = getattr(request, attr, None)
        if isinstance(value, str):
            fields[name] = value
    meta = getattr(request, "META", None)
    if isinstance(meta, dict) and meta.get("REMOTE_ADDR"):
        fields["remote_addr"] = meta["REMOTE_ADDR"]
    return fields


def _access_fields(atoms: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for atom, name in _ACCESS_ATOMS.items():
        value = atoms.get(atom)
        if value in (None, "-", ""):
            continue
        if name in ("status", "bytes", "duration_ms"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                continue
        fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (no newlines inside: tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        is_access = record.name == "gunicorn.access" and isinstance(record.args, dict)
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            # gunicorn formats the access line with a dict of atoms; the fields carry the
            # facts, so the message stays the short request line.
            "message": record.args.get("r", "") if is_access else record.getMessage(),
        }
        if is_access:
            entry.update(_access_fields(record.args))  # type: ignore[arg-type]
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in entry:
                continue
            if key == "request":
                entry.update(_request_fields(value))
            elif key != "server_time":  # django.server's extra: duplicates "time"
                entry[key] = _jsonable(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class ClientErrorTracebacks(logging.Filter):
    """Drop the traceback of a 4xx logged by ``django.request``.

    A malformed reference raises ``BadRequest`` on purpose and is answered with a 400 page; the
    warning line is worth keeping, a traceback for a user's typo is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


def logging_config(*, level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The ``LOGGING`` dict: every logger to stdout, as JSON lines or as plain text.

    ``fmt`` is ``json`` (production) or ``plain`` (reading logs in a terminal).
    """
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT={fmt!r}: use json or plain.")
    formatter = (
        {"()": "registryui.core.logging.JsonFormatter"}
        if fmt == "json"
        else {"format": PLAIN_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"client_errors": {"()": "registryui.core.logging.ClientErrorTracebacks"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "default",
                "filters": ["client_errors"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            # Replaces Django's default "django" handlers (console in DEBUG, mail_admins):
            # everything goes to stdout through root, once.
            "django": {"level": level.upper(), "propagate": True},
            "urllib3": {"level": "WARNING"},
            "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }
