"""The admin of sign-in: group → team mappings, external identities (read-only), and the
login rate limit's counters (deleting one unlocks that name and address)."""

from __future__ import annotations

from django.contrib import admin

from registryui.core.audit import record
from registryui.core.models import AuditEntry

from .forms import AdminLoginForm
from .models import ExternalIdentity, GroupMapping, LoginCounter

# The admin's own login page checks passwords through the same rate limit and audit log.
admin.site.login_form = AdminLoginForm


@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    list_display = ["group", "provider", "team"]
    list_filter = ["provider", "team"]
    search_fields = ["group", "team__name"]
    autocomplete_fields = ["team"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record(
            AuditEntry.Action.GROUP_MAPPING_SAVED,
            request=request,
            via="admin",
            details={"provider": obj.provider, "group": obj.group, "team": obj.team.name},
            message=f"{obj} (applies at each member's next login).",
        )

    def delete_model(self, request, obj) -> None:
        text = str(obj)
        details = {"provider": obj.provider, "group": obj.group, "team": obj.team.name}
        super().delete_model(request, obj)
        record(
            AuditEntry.Action.GROUP_MAPPING_DELETED,
            request=request,
            via="admin",
            details=details,
            message=f"Removed {text}.",
        )

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "provider", "issuer", "subject", "last_login"]
    list_filter = ["provider", "issuer"]
    search_fields = ["user__username", "subject", "issuer"]
    list_select_related = ["user"]
    readonly_fields = [
        "provider",
        "issuer",
        "subject",
        "user",
        "groups",
        "created_at",
        "last_login",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # made by logging in through the provider

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LoginCounter)
class LoginCounterAdmin(admin.ModelAdmin):
    list_display = ["username", "client_ip", "attempts", "last_at"]
    search_fields = ["username", "client_ip"]
    readonly_fields = ["username", "client_ip", "attempts", "last_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
