"""The audit log in the admin: read-only for everyone, superusers included.

Entries are evidence; an admin that could edit or delete them would make them worthless.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from .models import AuditEntry


class ReadOnlyMixin:
    """View permission only: no add, change or delete, whatever the user's permissions.

    The one copy, for every admin of evidence or of synced data (the registry is the source of
    that data; an edit here would be overwritten by the next sync, or lie until then).
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
