"""Team memberships that follow an identity provider's groups, checked at each login."""

from __future__ import annotations

from collections.abc import Iterable

from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.teams.models import Membership, Team

from .models import GroupMapping, Provider


def follow_groups(user, groups: Iterable[str], provider: Provider, *, request=None) -> None:
    """Make ``user``'s memberships from ``provider`` exactly the teams its groups map to.

    Memberships an admin added by hand stay whatever the provider says; a team the groups map
    to that the user is already in by hand stays a hand-made membership.
    """
    # LDAP DNs and names compare without case; OIDC group names are compared exactly.
    fold = str.casefold if provider == Provider.LDAP else str
    names = {fold(g) for g in groups}
    wanted = {
        m.team_id for m in GroupMapping.objects.filter(provider=provider) if fold(m.group) in names
    }
    current = dict(Membership.objects.filter(user=user).values_list("team_id", "source"))
    added = wanted - current.keys()
    removed = {team for team, source in current.items() if source == provider} - wanted
    teams = Team.objects.in_bulk(added | removed)
    username = user.get_username()
    # Through the many-to-many manager (not Membership rows directly), so the resolver's cache
    # is dropped by its m2m_changed receiver like for every other membership change.
    for team_id in sorted(added):
        teams[team_id].members.add(user, through_defaults={"source": provider})
    for team_id in sorted(removed):
        teams[team_id].members.remove(user)
    for team_id, action, verb in [
        *((t, AuditEntry.Action.TEAM_MEMBER_ADDED, "Added") for t in sorted(added)),
        *((t, AuditEntry.Action.TEAM_MEMBER_REMOVED, "Removed") for t in sorted(removed)),
    ]:
        record(
            action,
            request=request,
            user=user,
            via=str(provider),
            details={"team": teams[team_id].name, "user": username, "source": str(provider)},
            message=f"{verb} {username} {'to' if verb == 'Added' else 'from'} team "
            f"{teams[team_id].name}: {Provider(provider).label} groups.",
        )
