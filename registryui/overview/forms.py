from __future__ import annotations

from django import forms

from .models import RepositoryOverview


class OverviewForm(forms.ModelForm):
    class Meta:
        model = RepositoryOverview
        fields = ["description", "readme"]
        widgets = {
            "description": forms.TextInput(attrs={"autocomplete": "off"}),
            "readme": forms.Textarea(attrs={"rows": 18, "spellcheck": "true"}),
        }

    def clean_description(self) -> str:
        # One line: the list shows it in a table cell.
        return " ".join(self.cleaned_data["description"].split())
