from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from registryui.teams.models import Level
from registryui.teams.permissions import repositories_for

from .models import RetentionPolicy
from .retention import matching_repositories


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
    #: Switched on only from the dry run's confirmation page (``/retention/<pk>/enable``).
    readonly_fields = (
        "enabled",
        "created_at",
        "updated_at",
        "last_applied_at",
        "last_result",
        "preview_link",
    )
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled")}),
        ("Which repositories", {"fields": ("repository_pattern",)}),
        (
            "What to keep",
            {
                "fields": (
                    "keep_last",
                    "older_than_days",
                    "keep_regex",
                    "not_pulled_days",
                    "keep_pulled",
                    "pushed_before_days",
                ),
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

    def visible_on_site(self, request, policy: RetentionPolicy) -> bool:
        """For registryui.core.viewonsite: the rule of the preview page itself (superusers, or
        who may delete in a repository the policy matches)."""
        if request.user.is_superuser:
            return True
        deletable = repositories_for(request.user, Level.DELETE)
        return matching_repositories(policy, deletable).exists()

    @admin.display(description="Dry run")
    def preview_link(self, policy: RetentionPolicy) -> str:
        if policy.pk is None:
            return "Save the policy first."
        return format_html(
            '<a href="{}">Preview, apply, switch on or off</a>', policy.get_absolute_url()
        )
