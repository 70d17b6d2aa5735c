"""Scopes of the token protocol and what a principal is granted of them.

Grammar (docs/spec/auth/scope.md): ``type[(class)]:name:actions``, actions comma-separated.
A name may hold one ``:`` (``localhost:5000/team-a/api``), so the type ends at the first
``:`` and the actions start after the last one.

Grants follow the resolver's levels: ``view`` → pull, ``push`` → push, ``delete`` → delete.
Asking for more than that is not an error: the token simply lists fewer actions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from registryui.lib.reference import is_valid_name
from registryui.teams.models import Level

_TYPE_RE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\((?P<class>[a-zA-Z0-9]+)\))?$")
_ACTION_RE = re.compile(r"^(?:[a-z]+|\*)$")
MAX_SCOPES = 50  # a client asks for a handful; more is a mistake or an attack
MAX_SCOPE_LENGTH = 1024

#: The registry's repository actions, and the level each one needs.
ACTION_LEVELS = {"pull": Level.VIEW, "push": Level.PUSH, "delete": Level.DELETE}
PRIVILEGED_ACTIONS = frozenset({"push", "delete", "*"})
#: The credential's own limit needed for ``registry:catalog:*``. Listing every repository is a
#: superuser's privilege, so a personal access token limited below the full registry level
#: (pull, or pull and push) never lists the catalog, whoever owns it.
CATALOG_CEILING = Level.DELETE


class ScopeError(ValueError):
    """A scope that does not follow the grammar (the token endpoint answers 400)."""


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]
    resource_class: str = ""

    def __str__(self) -> str:
        klass = f"({self.resource_class})" if self.resource_class else ""
        return f"{self.type}{klass}:{self.name}:{','.join(self.actions)}"


def parse_scope(text: str) -> Scope:
    if len(text) > MAX_SCOPE_LENGTH:
        raise ScopeError("A scope is longer than 1024 characters.")
    head, sep, rest = text.partition(":")
    name, sep2, actions_text = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise ScopeError(f"{text!r} is not a scope: expected type:name:actions.")
    match = _TYPE_RE.match(head)
    if not match:
        raise ScopeError(f"{text!r} has an invalid resource type {head!r}.")
    if name.count(":") > 1:
        raise ScopeError(f"{text!r}: a name holds at most one ':' (for host:port).")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        # Also what the audit log could not store: PostgreSQL text refuses NUL.
        raise ScopeError(f"{text!r}: a name cannot contain spaces or control characters.")
    actions: list[str] = []
    for action in actions_text.split(","):
        action = action.strip()
        if not action:
            continue
        if not _ACTION_RE.match(action):
            raise ScopeError(f"{text!r} has an invalid action {action!r}.")
        if action not in actions:
            actions.append(action)
    return Scope(
        type=match["type"],
        resource_class=match["class"] or "",
        name=name,
        actions=tuple(actions),
    )


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Every ``scope`` parameter; one parameter may also hold several scopes split by spaces."""
    scopes: list[Scope] = []
    for value in values:
        for text in value.split():
            scopes.append(parse_scope(text))
            if len(scopes) > MAX_SCOPES:
                raise ScopeError(f"Too many scopes (at most {MAX_SCOPES}).")
    return scopes


def actions_for_level(level: int) -> frozenset[str]:
    """The registry actions a resolver level allows on a repository."""
    return frozenset(action for action, needed in ACTION_LEVELS.items() if level >= needed)


def granted_actions(principal, scope: Scope) -> list[str]:
    """The actions of ``scope`` that ``principal`` may take, in the order they were asked.

    ``principal`` has ``level_on(name) -> int``, ``may_list_catalog`` and ``ceiling``.
    """
    if scope.type == "repository":
        # A name with a registry host (or anything outside the grammar) is not a repository of
        # this registry: nothing is granted on it, whatever the patterns say.
        if not is_valid_name(scope.name):
            return []
        allowed = actions_for_level(principal.level_on(scope.name))
        granted = [a for a in scope.actions if a in allowed]
        # "*" means every action, so it is granted only to who may take all of them.
        if "*" in scope.actions and allowed >= ACTION_LEVELS.keys():
            granted.append("*")
        return granted
    if scope.type == "registry" and scope.name == "catalog" and not scope.resource_class:
        # The catalog lists every repository unfiltered: only for who may see all of them.
        allowed = principal.may_list_catalog and principal.ceiling >= CATALOG_CEILING
        return ["*"] if "*" in scope.actions and allowed else []
    return []


def grant(principal, scopes: Iterable[Scope]) -> list[dict]:
    """The token's ``access`` claim: one entry per resource asked for with anything granted."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for scope in scopes:
        key = (scope.type, scope.resource_class, scope.name)
        actions = merged.setdefault(key, [])
        for action in granted_actions(principal, scope):
            if action not in actions:
                actions.append(action)
    access = []
    for (type_, klass, name), actions in merged.items():
        if not actions:
            continue
        entry = {"type": type_, "name": name, "actions": actions}
        if klass:
            entry["class"] = klass
        access.append(entry)
    return access


def is_privileged(access: list[dict]) -> bool:
    """True when a token may push or delete in a repository (such tokens are audited)."""
    return any(
        entry["type"] == "repository" and PRIVILEGED_ACTIONS.intersection(entry["actions"])
        for entry in access
    )
