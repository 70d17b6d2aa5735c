"""The profile page: who you are here, your teams and what their grants let you do."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import permissions
from .decorators import member_required
from .forms import level_labels
from .models import Team


@member_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    teams = Team.objects.filter(members=user).prefetch_related("grants")
    access = permissions.access_for(user)
    memberships = [
        {
            "team": team,
            "grants": [
                {"grant": grant, "allows": level_labels(grant.level)}
                for grant in sorted(team.grants.all(), key=lambda g: (-g.level, g.pattern))
            ],
        }
        for team in teams
    ]
    # Rules that come from elsewhere than a team: superuser, public patterns, no-team patterns.
    other_rules = [rule for rule in access.rules if rule.team_id is None]
    context = {
        "memberships": memberships,
        "other_rules": other_rules,
        "administered": permissions.administered_patterns(user) if not user.is_superuser else [],
    }
    return render(request, "teams/profile.html", context)
