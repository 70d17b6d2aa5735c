from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from .models import RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "repository_pattern",
        "keep_last",
        "older_than_days",
        "keep_regex",
        "enabled",
        "last_applied_at",
        "preview_link",
    )
    list_filter = ("enabled",)
    search_fields = ("name", "repository_pattern", "description")
    readonly_fields = ("created_at", "updated_at", "last_applied_at", "last_result", "preview_link")
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled")}),
        ("Which repositories", {"fields": ("repository_pattern",)}),
        (
            "What to keep",
            {
                "fields": ("keep_last", "older_than_days", "keep_regex"),
                "description": "A tag is deleted only when no rule keeps it: it does not match "
                "the expression, is not among the most recent, and (when set) is older than the "
                "number of days. Tags sharing an image with a kept tag are always kept.",
            },
        ),
        (
            "Runs",
            {
                "fields": (
                    "last_applied_at",
                    "last_result",
                    "preview_link",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    @admin.display(description="Dry run")
    def preview_link(self, policy: RetentionPolicy) -> str:
        if policy.pk is None:
            return "Save the policy first."
        return format_html('<a href="{}">Preview and apply</a>', policy.get_absolute_url())
