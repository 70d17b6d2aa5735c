"""Repository patterns: the Python matcher against fnmatch (the reference), the database
filter against the Python matcher (on the database the suite runs on: SQLite or PostgreSQL),
validation, and ``covers``."""

from __future__ import annotations

import fnmatch
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from registryui.catalog.models import Repository
from registryui.teams.patterns import (
    NAME_CHARACTERS,
    PatternError,
    compile_pattern,
    covers,
    matches,
    pattern_q,
    patterns_q,
    validate_pattern,
)

# Few distinct characters, so that generated patterns and names actually meet.
LETTERS = "ab-./_0"
names = st.text(alphabet=LETTERS, min_size=0, max_size=12)
any_names = st.text(alphabet=NAME_CHARACTERS, min_size=1, max_size=20)
classes = st.builds(
    lambda negate, body: "[" + ("!" if negate else "") + body + "]",
    st.booleans(),
    st.text(alphabet=LETTERS + "]-az9", min_size=1, max_size=5),
)
pieces = st.one_of(
    st.text(alphabet=LETTERS, min_size=1, max_size=3),
    st.sampled_from(["*", "**", "?", "/", "*/", "/*"]),
    classes,
)
patterns = st.lists(pieces, min_size=1, max_size=6).map("".join)
# Anything at all, to check what validation rejects.
raw_patterns = st.text(alphabet=LETTERS + "*?[]!Az ", min_size=1, max_size=10)


@given(pattern=patterns, name=names)
@example(pattern="team-a/*", name="team-a/tools/x")
@example(pattern="[]a]", name="a")
@example(pattern="[!]a]", name="b")
@example(pattern="[a-]", name="-")
@example(pattern="[--/]", name=".")
@example(pattern="a[!b-z]", name="a_")
@settings(max_examples=600, deadline=None)
def test_the_matcher_agrees_with_fnmatch(pattern: str, name: str) -> None:
    try:
        compile_pattern(pattern)
    except PatternError:
        assume(False)
    assert matches(pattern, name) == fnmatch.fnmatchcase(name, pattern)


@given(pattern=raw_patterns, name=any_names)
@example(pattern="[0A]", name="0")
@settings(max_examples=400, deadline=None)
def test_validation_only_rejects_patterns_that_match_no_repository(pattern, name) -> None:
    """A rejected pattern never matched anything: it cannot be a lost rule.

    Characters no repository name has (uppercase letters, spaces) are refused by design,
    wherever they stand, with a message naming the allowed ones: ``[0A]`` is refused although
    it would match ``0`` (hypothesis found that one). The property is about the rest.
    """
    try:
        validate_pattern(pattern)
    except ValidationError:
        if set(pattern) <= set(NAME_CHARACTERS + "*?[]!"):
            assert not fnmatch.fnmatchcase(name, pattern)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "cannot be empty"),
        ("Team-A/*", "lowercase"),
        ("team a", "lowercase"),
        ("team-a/[ab", "without its closing"),
        ("team-a/[!a-z0-9._/-]", "matches no character"),
        ("team-a/[z-a]", "matches no character"),
        ("team-a/!x", "only has a meaning inside"),
        ("x" * 256, "at most 255"),
    ],
)
def test_validation_says_what_is_wrong(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_pattern(pattern)
    assert message in caught.value.messages[0]


def test_star_crosses_slashes_and_an_exact_name_matches_only_itself() -> None:
    assert matches("team-a/*", "team-a/api")
    assert matches("team-a/*", "team-a/tools/x")
    assert not matches("team-a/*", "team-a")
    assert not matches("team-a/*", "team-ab/api")
    assert matches("team-a/api", "team-a/api")
    assert not matches("team-a/api", "team-a/api2")
    assert not matches("team-a/api", "team-a/apx")
    assert matches("*", "anything/at/all")
    assert matches("*/api", "x/y/api")
    assert not matches("team.a/*", "teamxa/api")  # '.' is a literal dot


# -- no catastrophic backtracking ----------------------------------------------------------------

#: With plain ``.*`` for each star, Python's re (and SQLite's REGEXP, which is Python's re) tries
#: every way to split the name among the stars before failing: about 10**15 steps here.
MANY_STARS = "team-b/" + "*a" * 12 + "*b"
LONG_NAME = "team-b/" + "a" * 240  # a valid name, as a URL or a token scope may carry


@contextmanager
def interrupted_after(seconds: int) -> Iterator[None]:
    """Raise in the middle of a runaway regex (re checks for signals) instead of hanging."""

    def expire(signum, frame):
        raise TimeoutError(f"still matching after {seconds} s: catastrophic backtracking")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_many_stars_and_a_long_name_answer_at_once() -> None:
    with interrupted_after(20):
        assert not matches(MANY_STARS, LONG_NAME)
        assert matches(MANY_STARS, LONG_NAME + "b")


@pytest.mark.django_db
def test_the_database_filter_of_many_stars_answers_at_once() -> None:
    Repository.objects.bulk_create(Repository(name=n) for n in [LONG_NAME, LONG_NAME + "b"])
    with interrupted_after(20):
        for q in (pattern_q(MANY_STARS), patterns_q([MANY_STARS, "x?/*"])):
            selected = set(Repository.objects.filter(q).values_list("name", flat=True))
            assert selected == {LONG_NAME + "b"}


# -- the database filter ------------------------------------------------------------------------


@pytest.mark.django_db
@given(pattern=patterns, candidates=st.lists(names.filter(bool), min_size=1, max_size=8))
@example(pattern="a_*", candidates=["a_b", "axb"])  # LIKE's _ must be escaped
@example(pattern="a%*", candidates=["a%b", "ab"])
@example(pattern="[!a]*", candidates=["b", "\u00e9", "a"])
@example(pattern="a.b", candidates=["a.b", "axb"])
@example(pattern="*b", candidates=["ab\n", "ab"])
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_database_filter_selects_what_the_matcher_accepts(pattern, candidates) -> None:
    try:
        compile_pattern(pattern)
    except PatternError:
        assume(False)
    Repository.objects.all().delete()
    Repository.objects.bulk_create(Repository(name=n) for n in set(candidates))
    selected = set(Repository.objects.filter(pattern_q(pattern)).values_list("name", flat=True))
    assert selected == {n for n in set(candidates) if matches(pattern, n)}


@pytest.mark.django_db
@given(
    many=st.lists(patterns, min_size=0, max_size=25),
    candidates=st.lists(names.filter(bool), min_size=1, max_size=8),
)
@example(many=[f"a{i}*" for i in range(20)] + ["b", "b?"], candidates=["a3x", "b", "bb", "a"])
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_filter_of_many_patterns_selects_what_any_of_them_accepts(many, candidates) -> None:
    Repository.objects.all().delete()
    Repository.objects.bulk_create(Repository(name=n) for n in set(candidates))
    q = patterns_q(many)
    queryset = Repository.objects.all() if q is None else Repository.objects.filter(q)
    selected = set(queryset.values_list("name", flat=True))
    usable = [p for p in many if _usable(p)]
    assert selected == {n for n in set(candidates) if any(matches(p, n) for p in usable)}


def _usable(pattern: str) -> bool:
    try:
        compile_pattern(pattern)
    except PatternError:
        return False
    return True


@pytest.mark.django_db
def test_thousands_of_patterns_make_one_short_filter() -> None:
    """SQLite refuses expressions deeper than 1000; the filter stays a handful of terms."""
    many = [f"team-{i}/*" for i in range(3000)] + [f"x{i}/?y" for i in range(3000)]
    many += [f"exact/{i}" for i in range(3000)]
    q = patterns_q(many)
    assert len(q.children) == 2  # one IN, one regex
    Repository.objects.bulk_create(
        Repository(name=n) for n in ["team-2999/a", "x7/zy", "exact/42", "other/x"]
    )
    selected = set(Repository.objects.filter(q).values_list("name", flat=True))
    assert selected == {"team-2999/a", "x7/zy", "exact/42"}


@pytest.mark.django_db
def test_the_database_filter_of_a_bad_pattern_selects_nothing() -> None:
    Repository.objects.create(name="team-a/api")
    assert not Repository.objects.filter(pattern_q("team-a/[")).exists()


@pytest.mark.parametrize(
    ("pattern", "lookup"),
    [
        ("team-a/api", "exact"),
        ("team-a/*", "startswith"),
        ("*", "isnull"),
        ("team-?/*", "regex"),
    ],
)
def test_simple_patterns_use_indexable_lookups(pattern: str, lookup: str) -> None:
    ((key, _value),) = pattern_q(pattern).children
    assert key == ("name" if lookup == "exact" else f"name__{lookup}")


# -- covers: what a team admin may hand out -----------------------------------------------------


@given(outer=patterns, inner=patterns, name=names)
@example(outer="team-b/*", inner="team-b/[ab]*", name="team-b/a")
@settings(max_examples=800, deadline=None)
def test_covers_is_sound(outer: str, inner: str, name: str) -> None:
    """Whenever covers() says yes, every name of the inner pattern matches the outer one."""
    if covers(outer, inner) and matches(inner, name):
        assert matches(outer, name)


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("team-b/*", "team-b/*", True),
        ("team-b/*", "team-b/api", True),
        ("team-b/*", "team-b/tools/*", True),
        ("team-b/*", "team-b/?pi", True),
        ("*", "anything/*", True),
        ("team-b/api", "team-b/api", True),
        ("team-b/*", "team-b*", False),  # would reach team-bx/...
        ("team-b/*", "*", False),
        ("team-b/*", "team-a/api", False),
        ("team-b/api", "team-b/*", False),
        ("team-?/*", "team-b/api", True),  # a single name inside any pattern
        ("team-?/*", "team-b/*", False),  # sound but incomplete: said no
    ],
)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected
