"""The audit log in the admin: read-only for everyone, superusers included.

Entries are evidence; an admin that could edit or delete them would make them worthless.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "actor_name",
        "via",
        "action",
        "target",
        "result",
        "client_ip",
    ]
    # The actions that occur, not every choice: a filter of 26 mostly empty links helps no one.
    list_filter = [("action", admin.AllValuesFieldListFilter), "result", "via", "created_at"]
    search_fields = ["repository", "actor_name", "reference", "digest", "message"]
    date_hierarchy = "created_at"
    list_per_page = 100
    # The actor's username is kept in actor_name, so the list needs no join to users.
    fields = [
        "created_at",
        "actor",
        "actor_name",
        "via",
        "action",
        "result",
        "repository",
        "reference",
        "digest",
        "message",
        "details_pretty",
        "client_ip",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="target", ordering="repository")
    def target(self, entry: AuditEntry) -> str:
        if entry.reference:
            separator = "@" if entry.reference.startswith("sha") and ":" in entry.reference else ":"
            return f"{entry.repository}{separator}{entry.reference}"
        return entry.repository or "—"

    @admin.display(description="details")
    def details_pretty(self, entry: AuditEntry) -> str:
        if not entry.details:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(entry.details, indent=2, sort_keys=True))
