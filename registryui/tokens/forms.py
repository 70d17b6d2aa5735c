"""Forms for personal access tokens and robot accounts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from registryui.teams.models import Level, Team
from registryui.teams.patterns import validate_pattern
from registryui.teams.permissions import administered_patterns, administered_teams, may_grant

from .models import RegistryLevel, RobotAccount

EXPIRY_CHOICES = [
    ("7", "in 7 days"),
    ("30", "in 30 days"),
    ("90", "in 90 days"),
    ("365", "in a year"),
    ("never", "never"),
]
_ROBOT_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$")
#: Words accepted for a robot grant's level, with the resolver's names first.
_LEVEL_WORDS = {
    "view": Level.VIEW,
    "pull": Level.VIEW,
    "push": Level.PUSH,
    "delete": Level.DELETE,
}


def expiry_from_choice(choice: str) -> datetime | None:
    return None if choice == "never" else timezone.now() + timedelta(days=int(choice))


class PersonalTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “laptop”.")
    max_level = forms.TypedChoiceField(
        label="May",
        choices=RegistryLevel.choices,
        coerce=int,
        initial=RegistryLevel.PUSH,
        help_text="Never more than your own permissions on each repository.",
    )
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="90")


# -- robot accounts -----------------------------------------------------------------------------


def parse_grant_lines(text: str) -> list[tuple[str, int]]:
    """``team-a/*  push`` per line → [(pattern, level)]; errors name the line."""
    grants: dict[str, int] = {}
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1].lower() not in _LEVEL_WORDS:
            errors.append(
                f"Line {number}: write a pattern and pull, push or delete, e.g. “team-a/* push”."
            )
            continue
        pattern, level = parts[0], _LEVEL_WORDS[parts[1].lower()]
        try:
            validate_pattern(pattern)
        except ValidationError as exc:
            errors.append(f"Line {number}: {' '.join(exc.messages)}")
            continue
        grants[pattern] = max(level, grants.get(pattern, 0))
    if errors:
        raise ValidationError(errors)
    if not grants:
        raise ValidationError("Give the robot at least one grant.")
    return list(grants.items())


class RobotForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    name = forms.CharField(
        max_length=100,
        help_text="Lowercase letters, digits, - and _; the login will be robot$<name>.",
    )
    description = forms.CharField(max_length=255, required=False)
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="365")
    grants = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One grant per line: a pattern and pull, push or delete, e.g. "
        "“team-a/* push”. Only within what you administer in the team.",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["team"].queryset = administered_teams(user)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not _ROBOT_NAME_RE.match(name):
            raise ValidationError(
                "Use lowercase letters, digits, - and _ (starting and ending with a letter "
                "or digit)."
            )
        if RobotAccount.objects.filter(name=name).exists():
            raise ValidationError("A robot account with this name exists already.")
        return name

    def clean_grants(self) -> list[tuple[str, int]]:
        return parse_grant_lines(self.cleaned_data["grants"])

    def clean(self) -> dict:
        cleaned = super().clean()
        team, grants = cleaned.get("team"), cleaned.get("grants")
        if team is None or not grants:
            return cleaned
        # Per team: a robot is capped by its own team's grants, so what the user administers
        # through another team would give it nothing.
        wider = [p for p, level in grants if not may_grant(self.user, p, level, team)]
        if wider:
            allowed = administered_patterns(self.user, team)
            raise ValidationError(
                {
                    "grants": (
                        f"Not within what you administer in {team}: {', '.join(wider)}. "
                        f"You administer: {', '.join(allowed) or 'nothing'}."
                    )
                }
            )
        return cleaned
