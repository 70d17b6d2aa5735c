"""registryui.core.logging: one JSON object per line, with the facts of each record."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

import pytest
from django.test import RequestFactory

from registryui.core.logging import JsonFormatter, logging_config


def record(name="registryui.sync", msg="synced %s", args=("team-a/api",), **extra):
    item = logging.LogRecord(name, logging.INFO, __file__, 10, msg, args, None)
    for key, value in extra.items():
        setattr(item, key, value)
    return item


def formatted(item: logging.LogRecord) -> dict:
    line = JsonFormatter().format(item)
    assert "\n" not in line
    return json.loads(line)


def test_a_record_becomes_one_json_line():
    entry = formatted(record())
    assert entry["message"] == "synced team-a/api"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "registryui.sync"
    assert dt.datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_extra_fields_are_kept_and_made_json():
    entry = formatted(
        record(
            repository="team-a/api",
            counts={"tags": 3},
            when=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
            obj=object(),
        )
    )
    assert entry["repository"] == "team-a/api"
    assert entry["counts"] == {"tags": 3}
    assert entry["when"] == "2026-11-27T00:00:00+00:00"
    assert entry["obj"].startswith("<object object")


def test_exceptions_keep_their_traceback_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        item = record(msg="failed", args=())
        item.exc_info = sys.exc_info()
    entry = formatted(item)
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]


def test_a_django_request_record_names_the_request():
    request = RequestFactory().get("/r/team-a/api", REMOTE_ADDR="203.0.113.5")
    entry = formatted(
        record("django.request", "Not Found: %s", ("/r/team-a/api",), request=request,
               status_code=404)
    )  # fmt: skip
    assert entry["method"] == "GET"
    assert entry["path"] == "/r/team-a/api"
    assert entry["remote_addr"] == "203.0.113.5"
    assert entry["status_code"] == 404


def test_a_gunicorn_access_record_is_split_into_fields():
    atoms = {
        "h": "10.0.0.2", "r": "GET /healthz HTTP/1.1", "m": "GET", "U": "/healthz",
        "q": "", "H": "HTTP/1.1", "s": "200", "B": "57", "f": "-", "a": "curl/8", "M": "3",
    }  # fmt: skip
    item = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "%(r)s", (), None)
    item.args = atoms  # what gunicorn's logger passes
    entry = formatted(item)
    assert entry["message"] == "GET /healthz HTTP/1.1"
    assert entry["status"] == 200 and entry["bytes"] == 57 and entry["duration_ms"] == 3
    assert entry["path"] == "/healthz" and entry["user_agent"] == "curl/8"
    assert "query" not in entry and "referer" not in entry  # empty atoms are left out


def test_the_config_writes_to_stdout_in_either_format():
    config = logging_config(level="debug", fmt="json")
    assert config["handlers"]["stdout"]["stream"] == "ext://sys.stdout"
    assert config["root"]["level"] == "DEBUG"
    assert config["formatters"]["default"] == {"()": "registryui.core.logging.JsonFormatter"}
    assert "format" in logging_config(fmt="plain")["formatters"]["default"]
    with pytest.raises(ValueError, match="use json or plain"):
        logging_config(fmt="xml")


def test_a_client_error_keeps_its_warning_but_not_a_traceback():
    from registryui.core.logging import ClientErrorTracebacks

    try:
        raise ValueError("'Team-A/api' is not a valid repository name.")
    except ValueError:
        exc_info = sys.exc_info()
    bad_request = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Bad Request: %s", ("/r/Team-A",), exc_info
    )
    bad_request.status_code = 400
    server_error = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), exc_info
    )
    server_error.status_code = 500
    keep = ClientErrorTracebacks()
    assert keep.filter(bad_request) and keep.filter(server_error)
    assert bad_request.exc_info is None
    assert "exception" not in formatted(bad_request)
    assert "exception" in formatted(server_error)
    assert formatted(bad_request)["message"] == "Bad Request: /r/Team-A"
    assert server_error.exc_info is exc_info
