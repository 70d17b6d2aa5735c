"""Personal access tokens and robot accounts in the admin: listed, inspected and revoked.

New ones are made on /profile/tokens/ and /profile/robots/, where the secret is shown once;
the admin never sees a secret, only its prefix.
"""

from __future__ import annotations

from django.contrib import admin, messages

from registryui.core.audit import record
from registryui.core.models import AuditEntry

from .models import PersonalAccessToken, RobotAccount, RobotGrant


def _revoke(modeladmin, request, queryset, *, action: str, describe) -> None:
    revoked = 0
    for credential in queryset:
        if credential.revoke():
            revoked += 1
            record(action, request=request, via="admin", details=describe(credential))
    modeladmin.message_user(request, f"Revoked {revoked}.", messages.SUCCESS)


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "max_level",
        "state",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    list_filter = ("max_level", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    fields = (
        "user",
        "name",
        "prefix",
        "max_level",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="state")
    def state(self, obj: PersonalAccessToken) -> str:
        return obj.state

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        _revoke(
            self,
            request,
            queryset,
            action=AuditEntry.Action.PAT_REVOKED,
            describe=lambda t: {"token": t.prefix, "name": t.name, "user": t.user.get_username()},
        )


class RobotGrantInline(admin.TabularInline):
    model = RobotGrant
    extra = 0


@admin.register(RobotAccount)
class RobotAccountAdmin(admin.ModelAdmin):
    list_display = (
        "username",
        "team",
        "state",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
    )
    # created_by may be null: the admin's default select_related() would not follow it.
    list_select_related = ("team", "created_by")
    list_filter = ("team", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "description", "prefix")
    readonly_fields = (
        "name",
        "prefix",
        "team",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (
        "name",
        "team",
        "description",
        "prefix",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    inlines = [RobotGrantInline]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="state")
    def state(self, obj: RobotAccount) -> str:
        return obj.state

    @admin.action(description="Revoke the selected robot accounts")
    def revoke(self, request, queryset) -> None:
        _revoke(
            self,
            request,
            queryset,
            action=AuditEntry.Action.ROBOT_REVOKED,
            describe=lambda r: {"robot": r.username, "team": r.team.name},
        )
