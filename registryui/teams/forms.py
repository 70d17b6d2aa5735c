"""Forms of the teams admin: grants limited to what a team admin administers, and the
"effective permissions" question."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse_lazy
from django.utils.html import format_html

from registryui.lib.reference import InvalidReference, validate_name

from . import permissions
from .models import Grant, Level


class PatternInput(forms.TextInput):
    """The grant's pattern, previewed as it is typed: htmx asks the admin's pattern preview
    (``TeamAdmin.pattern_preview_view``) and shows the answer in the ``<output>`` below. Without
    JavaScript the saved grant's "Matches today" says the same after saving."""

    def __init__(self, attrs=None):
        super().__init__(
            {
                "hx-get": reverse_lazy("admin:teams_pattern_preview"),
                "hx-trigger": "input changed delay:300ms",
                "hx-target": "next output",
                "hx-sync": "this:replace",
                "autocomplete": "off",
                "spellcheck": "false",
                **(attrs or {}),
            }
        )

    def render(self, name, value, attrs=None, renderer=None):
        field = super().render(name, value, attrs, renderer)
        return format_html(
            '{}<output class="pattern-live" for="{}" aria-live="polite"></output>',
            field,
            (attrs or {}).get("id", ""),
        )

    class Media:
        js = ("vendor/htmx/htmx.min.js",)


class GrantForm(forms.ModelForm):
    """A team's grant. ``restricted_to`` is the team admin whose reach limits the pattern
    (None for users with Django's own permissions on grants, who may grant anything)."""

    restricted_to = None

    class Meta:
        model = Grant
        fields = ["pattern", "level"]
        widgets = {"pattern": PatternInput}

    @classmethod
    def limited_to(cls, user) -> type[GrantForm]:
        return type(cls.__name__, (cls,), {"restricted_to": user})

    def clean(self) -> dict:
        cleaned = super().clean()
        user = self.restricted_to
        pattern = cleaned.get("pattern")
        level = cleaned.get("level")
        team = self.instance.team if self.instance.team_id else None
        if user is not None and pattern and level is not None and self.has_changed():
            if team is None or not permissions.may_grant(user, pattern, int(level), team):
                mine = ", ".join(permissions.administered_patterns(user, team)) or "nothing"
                self.add_error(
                    "pattern",
                    f"You can only grant repositories you administer in this team ({mine}); "
                    f"{pattern} reaches beyond them. Ask a site administrator.",
                )
        return cleaned


class EffectivePermissionsForm(forms.Form):
    """ "What can user U do on repository R, and which grant gives it?" (a GET form)."""

    user = forms.CharField(
        label="User",
        required=False,
        help_text="A username; leave empty to ask about an anonymous visitor.",
    )
    repository = forms.CharField(
        label="Repository",
        max_length=255,
        help_text="A repository name such as team-a/api (it need not exist yet: pushes "
        "follow the same rules).",
    )

    def clean_user(self):
        username = self.cleaned_data["user"].strip()
        if not username:
            return AnonymousUser()
        user_model = get_user_model()
        try:
            return user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise forms.ValidationError(f"There is no user called {username}.") from None

    def clean_repository(self) -> str:
        name = self.cleaned_data["repository"].strip()
        try:
            return validate_name(name)
        except InvalidReference as exc:
            raise forms.ValidationError(str(exc)) from None


def level_labels(level: int) -> list[str]:
    return [lvl.label for lvl in Level if lvl <= level]
