"""The Distribution reference grammar: names, tags, digests and whole references."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registryui.lib.reference import (
    NAME_RE,
    TAG_RE,
    InvalidReference,
    Reference,
    is_valid_digest,
    is_valid_name,
    is_valid_tag,
    namespace_of,
    parse_reference,
    short_digest,
    validate_digest,
    validate_name,
    validate_tag,
)

SHA256 = "sha256:" + "a1" * 32


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "hello",
        "team-a/api",
        "platform/tools/builder",
        "a.b_c",
        "a__b",
        "a---b",
        "0/1/2",
        "x" * 255,
    ],
)
def test_valid_names(name):
    assert is_valid_name(name)
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "Team/api",
        "-a",
        "a-",
        "a_",
        ".a",
        "a//b",
        "/a",
        "a/",
        "a___b",
        "a_.b",
        "a b",
        "a:b",
        "a@b",
        "ü",
        "x" * 256,
    ],
)
def test_invalid_names(name):
    assert not is_valid_name(name)
    with pytest.raises(InvalidReference, match="not a valid repository name"):
        validate_name(name)


def test_checking_a_long_invalid_name_takes_no_backtracking():
    """Search, the event handler and the token server check untrusted names with
    ``is_valid_name`` directly. A separator that may be empty (``[-]*``, as the grammar once
    had) makes NAME_RE backtrack exponentially: hours for these. Run in a subprocess, so that a
    regression fails on the timeout instead of hanging the suite."""
    script = (
        "from registryui.lib.reference import is_valid_name as v\n"
        "bad = ['a' * 200 + '!', 'a-' * 100 + '!', 'ab_' * 60 + '!', ('a' * 40 + '/') * 5 + 'A']\n"
        "print(sum(map(v, bad)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "0\n"


@pytest.mark.parametrize("tag", ["latest", "1.4", "v1.0.0-rc.1", "_private", "A_b-C.d", "x" * 128])
def test_valid_tags(tag):
    assert is_valid_tag(tag) and validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-dash", "x" * 129, "a/b", "a:b", "ü", "a b"])
def test_invalid_tags(tag):
    assert not is_valid_tag(tag)
    with pytest.raises(InvalidReference, match="not a valid tag"):
        validate_tag(tag)


@pytest.mark.parametrize("digest", [SHA256, "sha512:" + "0f" * 64, "sha384:" + "ab" * 48])
def test_valid_digests(digest):
    assert is_valid_digest(digest) and validate_digest(digest) == digest


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A1" * 32,  # uppercase hex
        "sha256:" + "a1" * 31,  # too short
        "sha256:" + "a1" * 33,  # too long
        "sha256:" + "g1" * 32,  # not hex
        "md5:" + "a" * 32,  # unknown algorithm
        "a1" * 32,  # no algorithm
        "sha256",
        "",
    ],
)
def test_invalid_digests(digest):
    assert not is_valid_digest(digest)
    with pytest.raises(InvalidReference, match="not a valid digest"):
        validate_digest(digest)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", Reference("hello")),
        ("team-a/api:1.4", Reference("team-a/api", tag="1.4")),
        (f"team-a/api@{SHA256}", Reference("team-a/api", digest=SHA256)),
        (f"team-a/api:1.4@{SHA256}", Reference("team-a/api", tag="1.4", digest=SHA256)),
        (
            f"host:5000/a/b:1@{SHA256}",
            Reference("a/b", tag="1", digest=SHA256, domain="host:5000"),
        ),
        ("registry.example.com/team-a/api", Reference("team-a/api", domain="registry.example.com")),
        ("localhost/hello:latest", Reference("hello", tag="latest", domain="localhost")),
        ("[::1]:5000/hello", Reference("hello", domain="[::1]:5000")),
        ("  team-a/api:1  ", Reference("team-a/api", tag="1")),
    ],
)
def test_references_are_parsed(text, expected):
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "team-a/api:",
        "team-a/api:-bad",
        "Team-A/api",
        f"team-a/api@{SHA256[:-2]}",
        "team-a/api@latest",
        "a:b:c",
        "bad_host.-x/a",
    ],
)
def test_bad_references_are_refused(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_without_a_domain_a_host_is_just_a_bad_name():
    with pytest.raises(InvalidReference):
        parse_reference("host:5000/a/b", allow_domain=False)
    assert parse_reference("host/a", allow_domain=False) == Reference("host/a")


def test_namespace_and_short_digest():
    assert namespace_of("team-a/api") == "team-a"
    assert namespace_of("platform/tools/builder") == "platform"
    assert namespace_of("hello") == ""
    assert short_digest(SHA256) == "a1a1a1a1a1a1"
    assert short_digest(SHA256, 4) == "a1a1"


@settings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(NAME_RE, fullmatch=True).filter(lambda n: len(n) <= 255),
    tag=st.one_of(st.none(), st.from_regex(TAG_RE, fullmatch=True)),
)
def test_valid_references_round_trip(name, tag):
    text = name + (f":{tag}" if tag else "")
    reference = parse_reference(text, allow_domain=False)
    assert (reference.name, reference.tag) == (name, tag)
    assert str(reference) == text
