"""Scope parsing and the action intersection matrix (no database, no registry)."""

from __future__ import annotations

import pytest

from registryui.teams.models import Level
from registryui.tokens.scopes import (
    Scope,
    ScopeError,
    actions_for_level,
    grant,
    granted_actions,
    is_privileged,
    parse_scope,
    parse_scopes,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:team-a/api:pull", Scope("repository", "team-a/api", ("pull",))),
        (
            "repository:team-a/api:pull,push",
            Scope("repository", "team-a/api", ("pull", "push")),
        ),
        ("repository:team-a/api:delete", Scope("repository", "team-a/api", ("delete",))),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        # A name may hold one ':' for host:port: the type ends at the first ':', the actions
        # start after the last.
        (
            "repository:localhost:5000/team-a/api:pull",
            Scope("repository", "localhost:5000/team-a/api", ("pull",)),
        ),
        (
            "repository(plugin):team-a/p:pull",
            Scope("repository", "team-a/p", ("pull",), resource_class="plugin"),
        ),
        # Empty and repeated actions are dropped; the order asked is kept.
        ("repository:a:", Scope("repository", "a", ())),
        ("repository:a:push,pull,push,", Scope("repository", "a", ("push", "pull"))),
    ],
)
def test_it_parses_scopes(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "repository",
        "repository:team-a/api",
        "repository::pull",
        ":team-a/api:pull",
        "Repo Sitory:a:pull",
        "repository(bad class):a:pull",
        "repository:a:b:c:pull",
        "repository:a:PULL",
        "repository:a:pull;rm",
        "repository:" + "a" * 1100 + ":pull",
    ],
)
def test_it_rejects_malformed_scopes(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_it_reads_repeated_and_space_separated_scope_parameters() -> None:
    scopes = parse_scopes(
        ["repository:team-a/api:pull", "repository:team-a/x:pull repository:team-a/y:push", ""]
    )
    assert [s.name for s in scopes] == ["team-a/api", "team-a/x", "team-a/y"]


def test_it_refuses_too_many_scopes() -> None:
    with pytest.raises(ScopeError, match="Too many"):
        parse_scopes([f"repository:r{i}:pull" for i in range(51)])


class Fixed:
    """A principal with one level everywhere (the matrix does not need patterns)."""

    def __init__(self, level: int, *, catalog: bool = False, ceiling: int = Level.ADMIN) -> None:
        self.level = level
        self.may_list_catalog = catalog
        self.ceiling = ceiling

    def level_on(self, name: str) -> int:
        return self.level


ASKED = ("pull", "push", "delete", "*")
MATRIX = {
    0: [],
    Level.VIEW: ["pull"],
    Level.PUSH: ["pull", "push"],
    Level.DELETE: ["pull", "push", "delete", "*"],
    Level.ADMIN: ["pull", "push", "delete", "*"],
}


@pytest.mark.parametrize(("level", "expected"), MATRIX.items())
def test_actions_granted_follow_the_level(level: int, expected: list[str]) -> None:
    scope = Scope("repository", "team-a/api", ASKED)
    assert granted_actions(Fixed(level), scope) == expected


@pytest.mark.parametrize(
    ("asked", "level", "expected"),
    [
        (("pull", "push"), Level.VIEW, ["pull"]),
        (("push", "pull"), Level.PUSH, ["push", "pull"]),
        (("delete",), Level.PUSH, []),
        (("delete",), Level.DELETE, ["delete"]),
        (("*",), Level.PUSH, []),
        (("pull", "frobnicate"), Level.ADMIN, ["pull"]),
    ],
)
def test_it_grants_the_intersection_of_asked_and_allowed(asked, level, expected) -> None:
    assert granted_actions(Fixed(level), Scope("repository", "r", asked)) == expected


def test_level_to_actions() -> None:
    assert actions_for_level(0) == frozenset()
    assert actions_for_level(Level.VIEW) == {"pull"}
    assert actions_for_level(Level.PUSH) == {"pull", "push"}
    assert actions_for_level(Level.DELETE) == {"pull", "push", "delete"}


def test_catalog_only_for_who_may_list_it() -> None:
    scope = parse_scope("registry:catalog:*")
    assert granted_actions(Fixed(Level.ADMIN), scope) == []
    assert granted_actions(Fixed(Level.ADMIN, catalog=True), scope) == ["*"]
    # A credential limited below the full registry level never lists it (a pull-only token).
    for ceiling in (Level.VIEW, Level.PUSH):
        assert granted_actions(Fixed(Level.ADMIN, catalog=True, ceiling=ceiling), scope) == []
    assert granted_actions(Fixed(Level.ADMIN, catalog=True, ceiling=Level.DELETE), scope) == ["*"]
    # Other registry resources and unknown types grant nothing.
    assert granted_actions(Fixed(Level.ADMIN, catalog=True), parse_scope("registry:x:*")) == []
    assert granted_actions(Fixed(Level.ADMIN), parse_scope("plugin:x:pull")) == []


def test_names_outside_the_grammar_get_nothing() -> None:
    everything = Fixed(Level.ADMIN)
    assert granted_actions(everything, parse_scope("repository:localhost:5000/a:pull")) == []
    assert granted_actions(everything, parse_scope("repository:Team-A/api:pull")) == []


def test_access_merges_scopes_and_drops_empty_entries() -> None:
    class ByName:
        may_list_catalog = False

        def level_on(self, name: str) -> int:
            return {"team-a/api": Level.PUSH, "team-a/src": Level.VIEW}.get(name, 0)

    scopes = parse_scopes(
        [
            "repository:team-a/api:pull",
            "repository:team-a/api:push",
            # A cross-repository mount asks for pull on the source: granted when allowed.
            "repository:team-a/src:pull",
            "repository:team-b/secret:pull",
            "repository(plugin):team-a/api:pull",
        ]
    )
    assert grant(ByName(), scopes) == [
        {"type": "repository", "name": "team-a/api", "actions": ["pull", "push"]},
        {"type": "repository", "name": "team-a/src", "actions": ["pull"]},
        {"type": "repository", "name": "team-a/api", "actions": ["pull"], "class": "plugin"},
    ]


def test_privileged_means_push_or_delete_on_a_repository() -> None:
    assert not is_privileged([{"type": "repository", "name": "a", "actions": ["pull"]}])
    assert not is_privileged([{"type": "registry", "name": "catalog", "actions": ["*"]}])
    assert is_privileged([{"type": "repository", "name": "a", "actions": ["pull", "push"]}])
    assert is_privileged([{"type": "repository", "name": "a", "actions": ["delete"]}])
    assert is_privileged([{"type": "repository", "name": "a", "actions": ["*"]}])
