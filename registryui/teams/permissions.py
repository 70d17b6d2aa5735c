"""The one resolver of access: who may see, push, delete or administer which repository.

Every view, list, count, search, htmx fragment and mutation asks here, and so does the token
server for ``docker push/pull``. A user's rules are loaded once per request (at most two
queries: their teams' grants and the site settings) and cached on the user object; narrowing a
repository queryset then adds no query of its own, however many grants and repositories exist.

Who gets which rules:

- a superuser: everything (``admin`` on ``*``); an inactive user: nothing;
- a member of teams: the union of their teams' grants;
- a logged-in user in no team: ``view`` on the site settings' "no team" patterns;
- anyone, logged in or not, when anonymous viewing is on: ``view`` on the public patterns
  (logging in never shows less than the public sees).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.http import Http404

from registryui.catalog.models import Repository, Tag

from .models import Grant, Level, SiteSettings, Team, split_patterns
from .patterns import covers, matches, patterns_q

_CACHE_ATTR = "_registryui_access"

# Rules are cached on the user object for one request. A change to teams, grants, members or
# site settings made in this process (an admin edit, a test) bumps the generation, so a user
# object that outlives the change never answers from stale rules.
_generations = itertools.count(1)
_generation = next(_generations)


@dataclass(frozen=True)
class Rule:
    """One reason a user may act on repositories matching ``pattern`` up to ``level``."""

    pattern: str
    level: int
    source: str  # "team team-a: delete on team-a/*", "superuser", "public (anonymous viewing)"
    team_id: int | None = None
    grant_id: int | None = None

    def applies_to(self, name: str) -> bool:
        return matches(self.pattern, name)

    @property
    def level_label(self) -> str:
        return Level(self.level).label


@dataclass(frozen=True)
class Access:
    """Everything the resolver knows about one user, loaded once."""

    rules: tuple[Rule, ...]
    superuser: bool = False
    team_ids: tuple[int, ...] = ()
    generation: int = 0
    #: A credential's own limit (a personal access token's level): nothing above it anywhere.
    ceiling: int = Level.ADMIN
    #: Rules that cap these (a robot account's team): the level is the lower of both.
    within: Access | None = None

    def level_on(self, name: str) -> int:
        if self.superuser:
            level = Level.ADMIN
        else:
            level = max((r.level for r in self.rules if r.applies_to(name)), default=0)
        if self.within is not None:
            level = min(level, self.within.level_on(name))
        return min(level, self.ceiling)

    def q(self, action: int = Level.VIEW, field: str = "name") -> Q | None:
        """A filter for names the user may act on; None means "every repository"."""
        if action > self.ceiling:
            return Q(pk__in=[])
        own = (
            None
            if self.superuser
            else patterns_q((r.pattern for r in self.rules if r.level >= action), field)
        )
        cap = self.within.q(action, field) if self.within is not None else None
        if own is None or cap is None:
            return cap if own is None else own
        return own & cap

    def patterns_at(self, level: int) -> list[str]:
        """The patterns on which the user holds at least ``level`` (for ``within``, the own
        patterns: a superset, which callers narrow with ``q``)."""
        if level > self.ceiling:
            return []
        if self.superuser:
            return ["*"]
        return list(dict.fromkeys(r.pattern for r in self.rules if r.level >= level))


#: Set by ``bind_credential`` on the object a request acts as.
_CREDENTIAL_ATTR = "_registryui_credential"


@dataclass(frozen=True)
class _Credential:
    ceiling: int
    access: Access | None


def bind_credential(user, *, ceiling: int = Level.ADMIN, access: Access | None = None) -> None:
    """Answer for ``user`` as a credential allows, for the rest of the request (the REST API).

    ``ceiling``: a personal access token's own limit, applied over its user's rules.
    ``access``: rules of their own for an object that is not a user (a robot account: its
    grants, ``within`` its team's), used instead of loading any user's.
    """
    setattr(user, _CREDENTIAL_ATTR, _Credential(ceiling, access))
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def access_for(user) -> Access:
    """The user's rules, cached on the user object for the rest of the request."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None and cached.generation == _generation:
        return cached
    access = _load(user)
    if user is not None:
        try:
            setattr(user, _CACHE_ATTR, access)
        except AttributeError:  # pragma: no cover - an object that refuses attributes
            pass
    return access


def _invalidate(**kwargs) -> None:
    global _generation
    _generation = next(_generations)


for _model in (Team, Grant, SiteSettings):
    post_save.connect(_invalidate, sender=_model, dispatch_uid=f"teams-access-save-{_model}")
    post_delete.connect(_invalidate, sender=_model, dispatch_uid=f"teams-access-del-{_model}")
m2m_changed.connect(_invalidate, sender=Team.members.through, dispatch_uid="teams-access-m2m")


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="teams-access-user")
def _user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    # A login saves last_login only; that changes no rights.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    _invalidate()


def _load(user) -> Access:
    credential = getattr(user, _CREDENTIAL_ATTR, None)
    if credential is None:
        return _load_user(user)
    access = credential.access if credential.access is not None else _load_user(user)
    return replace(access, ceiling=min(access.ceiling, credential.ceiling), generation=_generation)


def _load_user(user) -> Access:
    generation = _generation
    if user is None or (user.is_authenticated and not user.is_active):
        return Access(rules=(), generation=generation)
    if user.is_authenticated and user.is_superuser:
        return Access(
            rules=(Rule("*", Level.ADMIN, "superuser"),), superuser=True, generation=generation
        )
    site = SiteSettings.load()
    public: list[Rule] = []
    if site.anonymous_view:
        public = [
            Rule(p, Level.VIEW, "public (anonymous viewing)")
            for p in split_patterns(site.public_patterns)
        ]
    if not user.is_authenticated:
        return Access(rules=tuple(public), generation=generation)
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
        rules = [
            Rule(p, Level.VIEW, "site settings (users in no team)")
            for p in split_patterns(site.no_team_patterns)
        ]
    return Access(rules=tuple(rules + public), team_ids=tuple(team_ids), generation=generation)


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


@dataclass(frozen=True)
class Capabilities:
    """What a user may do on one repository, for templates: ``{% if can.delete %}``."""

    level: int

    @property
    def view(self) -> bool:
        return self.level >= Level.VIEW

    @property
    def push(self) -> bool:
        return self.level >= Level.PUSH

    @property
    def delete(self) -> bool:
        return self.level >= Level.DELETE

    @property
    def admin(self) -> bool:
        return self.level >= Level.ADMIN

    @property
    def label(self) -> str:
        return Level(self.level).label if self.level else "none"

    def __bool__(self) -> bool:
        return self.view


def capabilities(user, name: str) -> Capabilities:
    return Capabilities(level_on(user, name))


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


# -- team administration ----------------------------------------------------------------------


def administered_patterns(user, team: Team | None = None) -> list[str]:
    """The patterns on which the user holds ``admin`` (``["*"]`` for a superuser); with
    ``team``, only those that team's grants give them."""
    access = access_for(user)
    if team is None or access.superuser:
        return access.patterns_at(Level.ADMIN)
    return list(
        dict.fromkeys(
            r.pattern for r in access.rules if r.team_id == team.pk and r.level >= Level.ADMIN
        )
    )


def administered_teams(user) -> QuerySet:
    """The teams whose grants the user manages: every team for a superuser, otherwise the
    user's own teams that hold an ``admin`` grant."""
    access = access_for(user)
    if access.superuser:
        return Team.objects.all()
    team_ids = {r.team_id for r in access.rules if r.level >= Level.ADMIN and r.team_id}
    return Team.objects.filter(pk__in=sorted(team_ids))


def may_grant(user, pattern: str, level: int = Level.ADMIN, team: Team | None = None) -> bool:
    """May the user hand out ``level`` on ``pattern`` (to a team grant or a robot account)?

    Only within what they administer (in ``team``, when given: a team admin manages their
    team's own grants, inside that team's ``admin`` patterns): every name ``pattern`` matches
    must lie inside one of those patterns (``covers`` is sound, so this never widens anyone's
    reach). An admin holds every level, so any level up to ``admin`` may be given there.
    """
    if level > Level.ADMIN:
        return False
    return any(covers(outer, pattern) for outer in administered_patterns(user, team))
