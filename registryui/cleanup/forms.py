from __future__ import annotations

from django import forms
from django.core.exceptions import BadRequest, ValidationError

from registryui.browse.tags import MAX_BULK_TAGS
from registryui.lib.reference import is_valid_digest, is_valid_tag

__all__ = ["MAX_BULK_TAGS"]


def validate_tag(value: str) -> None:
    if not is_valid_tag(value):
        raise ValidationError(
            "A tag is 1 to 128 letters, digits, _ . or -, and does not start with . or -."
        )


def validate_digest(value: str) -> None:
    if not is_valid_digest(value):
        raise ValidationError("That is not a digest (sha256: and 64 hexadecimal digits).")


class RetagForm(forms.Form):
    new_tag = forms.CharField(label="Tag", max_length=128, validators=[validate_tag])
    #: The digest the tag pointed at when its move was confirmed ('' for a new tag).
    confirmed_old = forms.CharField(
        required=False, widget=forms.HiddenInput, validators=[validate_digest]
    )

    def clean_new_tag(self) -> str:
        return self.cleaned_data["new_tag"].strip()


#: The repository page's query parameter that shows "select a tag first" by the bulk form.
NOTHING_SELECTED = "bulk=none"


def selected_tags(values: list[str]) -> list[str]:
    """The tags ticked on the repository page (``?tag=…&tag=…``), checked one by one; empty
    when none was ticked (the view sends the user back to say so in place)."""
    tags = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(tags) > MAX_BULK_TAGS:
        raise BadRequest(
            f"Select at most {MAX_BULK_TAGS} tags at once; use a retention policy for more."
        )
    bad = [t for t in tags if not is_valid_tag(t)]
    if bad:
        raise BadRequest(f"{bad[0]!r} is not a valid tag.")
    return tags


def confirmed_items(values: list[str]) -> dict[str, str]:
    """``tag@digest`` pairs posted by a confirmation page → {tag: digest}."""
    items: dict[str, str] = {}
    for value in values:
        tag, at, digest = value.strip().rpartition("@")
        if not at or not is_valid_tag(tag) or not is_valid_digest(digest):
            raise BadRequest(f"{value!r} is not a confirmed tag (tag@digest).")
        items[tag] = digest
    if not items:
        raise BadRequest("Nothing was confirmed: open the confirmation page again.")
    if len(items) > MAX_BULK_TAGS:
        raise BadRequest(f"At most {MAX_BULK_TAGS} tags at once.")
    return items


class StaleForm(forms.Form):
    """The stale images view's query: ``?pulled=N&pushed=M`` (days; 30 each by default)."""

    pulled = forms.IntegerField(
        label="Not pulled in (days)", min_value=0, max_value=36_500, required=False
    )
    pushed = forms.IntegerField(
        label="Not pushed in (days)", min_value=0, max_value=36_500, required=False
    )
    page = forms.IntegerField(min_value=1, max_value=10_000, required=False)
    DEFAULT_DAYS = 30

    def page_number(self) -> int:
        self.days()
        return self.cleaned_data["page"] or 1

    def days(self) -> tuple[int, int]:
        """(pulled, pushed) in days; ``BadRequest`` for anything but whole numbers in range."""
        if not self.is_valid():
            field, errors = next(iter(self.errors.items()))
            raise BadRequest(f"{field}: {' '.join(errors)}")
        pulled, pushed = self.cleaned_data["pulled"], self.cleaned_data["pushed"]
        return (
            self.DEFAULT_DAYS if pulled is None else pulled,
            self.DEFAULT_DAYS if pushed is None else pushed,
        )
