from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from registryui.lib.untrusted import clean_json, clean_text, parse_timestamp, text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        (json.loads('"x\\ud800y"'), "x\ufffdy"),
        (json.loads('"\\udfff"'), "\ufffd"),
        (json.loads('"\\ud83d\\ude00"'), "\U0001f600"),  # a proper pair is one character: kept
    ],
)
def test_clean_text_replaces_nul_and_lone_surrogates_only(raw, expected):
    assert clean_text(raw) == expected


def test_clean_json_cleans_keys_and_nested_values():
    document = json.loads('{"k\\u0000": ["\\ud800", {"x": "\\u0000"}], "n": 1, "b": true}')
    assert clean_json(document) == {"k\ufffd": ["\ufffd", {"x": "\ufffd"}], "n": 1, "b": True}


def test_text_reads_any_value_as_clean_text():
    assert text(None) == ""
    assert text(5) == "5"
    assert text("a\x00") == "a\ufffd"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("9999-12-31T23:59:59-23:59", None),  # past datetime.max once in UTC
        ("0001-01-01T00:00:00+23:59", None),  # before datetime.min once in UTC
        ("1970-01-01T00:00:00Z", None),  # the epoch of reproducible builds: unknown
        ("2024-13-01T00:00:00Z", None),
        ("not a date", None),
        ("", None),
        (12345, None),
        ("2" * 100, None),
    ],
)
def test_parse_timestamp_treats_out_of_range_and_malformed_as_unknown(value, expected):
    assert parse_timestamp(value) == expected
