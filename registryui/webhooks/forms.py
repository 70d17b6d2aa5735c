"""The endpoint form of the admin: events as checkboxes, the pattern kept inside the team's."""

from __future__ import annotations

from django import forms

from registryui.teams.models import Grant
from registryui.teams.patterns import covers

from .models import Endpoint, EventKind


class EndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        label="URL",
        help_text="Where deliveries are POSTed (http or https).",
    )
    events = forms.MultipleChoiceField(
        choices=EventKind.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What this endpoint hears about.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "team",
            "name",
            "url",
            "format",
            "events",
            "repository_pattern",
            "secret",
            "active",
        ]
        widgets = {"secret": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})}

    def __init__(self, *args, teams=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if teams is not None:
            self.fields["team"].queryset = teams
        if not self.instance.pk:
            self.fields["secret"].initial = self.instance.secret

    def clean(self):
        cleaned = super().clean()
        team, pattern = cleaned.get("team"), cleaned.get("repository_pattern")
        if team is not None and pattern:
            own = list(Grant.objects.filter(team=team).values_list("pattern", flat=True))
            if not any(covers(outer, pattern) for outer in own):
                self.add_error(
                    "repository_pattern",
                    "A webhook hears only of repositories its team's grants cover: "
                    + (
                        f"use one of {', '.join(sorted(own))} or a narrower pattern."
                        if own
                        else f"the team {team} has no grants yet."
                    ),
                )
        return cleaned
