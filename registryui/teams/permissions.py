"""The one resolver of access: who may see, push, delete or administer which repository.

Every view, list, count, search, htmx fragment and mutation asks here, and so does the token
server for ``docker push/pull``. A user's rules are loaded once per request (at most two
queries: their teams' grants and the site settings) and cached on the user object; narrowing a
repository queryset then adds no query of its own, however many grants and repositories exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from registryui.catalog.models import Repository, Tag

from .models import Grant, Level, SiteSettings, Team, split_patterns
from .patterns import matches, pattern_q

Action = Level  # the actions a user may take are the grant levels: VIEW < PUSH < DELETE < ADMIN

_CACHE_ATTR = "_registryui_access"


@dataclass(frozen=True)
class Rule:
    """One reason a user may act on repositories matching ``pattern`` up to ``level``."""

    pattern: str
    level: int
    source: str  # "team-a: delete on team-a/*", "superuser", "public (anonymous viewing)"
    team_id: int | None = None
    grant_id: int | None = None

    def applies_to(self, name: str) -> bool:
        return matches(self.pattern, name)


@dataclass(frozen=True)
class Access:
    """Everything the resolver knows about one user, loaded once."""

    rules: tuple[Rule, ...]
    superuser: bool = False
    team_ids: tuple[int, ...] = ()

    def level_on(self, name: str) -> int:
        if self.superuser:
            return Level.ADMIN
        return max((r.level for r in self.rules if r.applies_to(name)), default=0)

    def q(self, action: int = Level.VIEW, field: str = "name") -> Q | None:
        """A filter for names the user may act on; None means "every repository"."""
        if self.superuser:
            return None
        relevant = [r for r in self.rules if r.level >= action]
        if any(set(r.pattern) == {"*"} for r in relevant):
            return None
        if not relevant:
            return Q(pk__in=[])
        return reduce(or_, (pattern_q(r.pattern, field) for r in relevant))


def access_for(user) -> Access:
    """The user's rules, cached on the user object for the rest of the request."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    access = _load(user)
    try:
        setattr(user, _CACHE_ATTR, access)
    except AttributeError:  # pragma: no cover - an object that refuses attributes
        pass
    return access


def forget(user) -> None:
    """Drop the cached rules (after grants or memberships change within one request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def _load(user) -> Access:
    if user is None or (user.is_authenticated and not user.is_active):
        return Access(rules=())
    if user.is_authenticated and user.is_superuser:
        return Access(rules=(Rule("*", Level.ADMIN, "superuser"),), superuser=True)
    if not user.is_authenticated:
        site = SiteSettings.load()
        if not site.anonymous_view:
            return Access(rules=())
        return Access(
            rules=tuple(
                Rule(p, Level.VIEW, "public (anonymous viewing)")
                for p in split_patterns(site.public_patterns)
            )
        )
    # One query: the user's teams, with their grants (a team without grants still counts).
    rows = (
        Team.objects.filter(members=user)
        .values_list("id", "name", "grants__id", "grants__pattern", "grants__level")
        .order_by("id", "grants__id")
    )
    team_ids: list[int] = []
    rules: list[Rule] = []
    for team_id, team_name, grant_id, pattern, level in rows:
        if team_id not in team_ids:
            team_ids.append(team_id)
        if grant_id is not None:
            label = Level(level).label
            rules.append(
                Rule(pattern, level, f"team {team_name}: {label} on {pattern}", team_id, grant_id)
            )
    if not team_ids:
        site = SiteSettings.load()
        rules = [
            Rule(p, Level.VIEW, "site settings (users in no team)")
            for p in split_patterns(site.no_team_patterns)
        ]
    return Access(rules=tuple(rules), team_ids=tuple(team_ids))


# -- the questions views ask ------------------------------------------------------------------


def visible_repositories(user, queryset: QuerySet | None = None) -> QuerySet:
    """Narrow a Repository queryset to what the user may see (adds no query of its own)."""
    queryset = Repository.objects.all() if queryset is None else queryset
    q = access_for(user).q(Level.VIEW)
    return queryset if q is None else queryset.filter(q)


def repositories_for(user, action: int, queryset: QuerySet | None = None) -> QuerySet:
    """Narrow a Repository queryset to those where the user may take ``action``."""
    queryset = Repository.objects.all() if queryset is None else queryset
    q = access_for(user).q(action)
    return queryset if q is None else queryset.filter(q)


def visible_tags(user, queryset: QuerySet | None = None) -> QuerySet:
    """Narrow a Tag queryset to tags of repositories the user may see."""
    queryset = Tag.objects.all() if queryset is None else queryset
    q = access_for(user).q(Level.VIEW, field="repository__name")
    return queryset if q is None else queryset.filter(q)


def level_on(user, name: str) -> int:
    return access_for(user).level_on(name)


def can(user, action: int, name: str) -> bool:
    return access_for(user).level_on(name) >= action


def allowed_actions(user, name: str) -> set[Level]:
    level = level_on(user, name)
    return {lvl for lvl in Level if lvl <= level}


def explain(user, name: str) -> list[Rule]:
    """The rules that apply to ``name`` for this user, strongest first."""
    return sorted(
        (r for r in access_for(user).rules if r.applies_to(name)),
        key=lambda r: -r.level,
    )


def check(user, action: int, name: str) -> None:
    """404 when the repository is hidden from the user, 403 when visible but not allowed.

    A 403 for a hidden repository would confirm that it exists, so hidden always means 404.
    """
    level = level_on(user, name)
    if level < Level.VIEW:
        raise Http404("No such repository.")
    if level < action:
        raise PermissionDenied(
            f"You need the {Level(action).label} permission on {name} to do this."
        )


def get_repository_or_404(user, name: str, action: int = Level.VIEW) -> Repository:
    """The visible repository called ``name`` on which the user may take ``action``."""
    check(user, Level.VIEW, name)
    try:
        repository = Repository.objects.get(name=name)
    except Repository.DoesNotExist:
        raise Http404("No such repository.") from None
    if action > Level.VIEW:
        check(user, action, name)
    return repository


def grants_matching(name: str) -> QuerySet:
    """Every grant whose pattern matches ``name`` (for the admin's "effective permissions")."""
    return Grant.objects.filter(
        pk__in=[g.pk for g in Grant.objects.only("pk", "pattern") if matches(g.pattern, name)]
    )
