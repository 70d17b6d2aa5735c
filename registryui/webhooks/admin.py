"""Webhook endpoints in the admin, with their delivery log.

Staff with the ``webhooks`` model permissions manage every team's endpoints; a team admin
(``teams.permissions.administered_teams``) manages their own teams' endpoints only. Saving and
deleting an endpoint are audited. The delivery log is read-only, with "send again".
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from registryui.core.admin import ReadOnlyMixin
from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.teams import permissions

from .forms import EndpointForm
from .models import Delivery, Endpoint

VIA = "admin"
LOG_SHOWN = 20


def _teams(request: HttpRequest):
    return permissions.administered_teams(request.user)


def _full(request: HttpRequest, action: str) -> bool:
    return request.user.has_perm(f"webhooks.{action}_endpoint")


def _administers(request: HttpRequest, endpoint: Endpoint | None) -> bool:
    if not (request.user.is_active and request.user.is_staff):
        return False
    teams = _teams(request)
    return teams.exists() if endpoint is None else teams.filter(pk=endpoint.team_id).exists()


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = [
        "name",
        "team",
        "url",
        "format",
        "event_list",
        "repository_pattern",
        "active",
        "last_delivery",
    ]
    list_filter = ["active", "format", "team"]
    search_fields = ["name", "url", "team__name"]
    readonly_fields = ["latest_deliveries"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("team")
        if _full(request, "view") or _full(request, "change"):
            return queryset
        return queryset.filter(team__in=_teams(request))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        teams = None if _full(request, "change") else _teams(request)

        class Scoped(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, teams=teams, **inner)

        return Scoped

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) or _administers(request, None)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or _administers(request, obj)

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) or _administers(request, None)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) or _administers(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) or _administers(request, obj)

    @admin.display(description="Latest deliveries")
    def latest_deliveries(self, endpoint: Endpoint) -> str:
        """The delivery log's last entries, as lines that wrap on a phone (a table here would
        scroll sideways); each links to the delivery's full record."""
        if endpoint is None or not endpoint.pk:
            return "None yet: deliveries are listed here once events arrive."
        latest = list(endpoint.deliveries.order_by("-id")[:LOG_SHOWN])
        if not latest:
            return "None yet."
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a> · {} · <code>{}</code> · {}{} · {} attempt{}{}</li>',
            (
                (
                    reverse("admin:webhooks_delivery_change", args=[d.pk]),
                    d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    d.event_type.removeprefix("io.registryui."),
                    d.repository,
                    d.get_state_display(),
                    f" (HTTP {d.last_status})" if d.last_status else "",
                    d.attempts,
                    "" if d.attempts == 1 else "s",
                    f" · {d.last_error}" if d.last_error else "",
                )
                for d in latest
            ),
        )
        return format_html('<ul class="webhook-deliveries">{}</ul>', items)

    @admin.display(description="Events")
    def event_list(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.events or [])

    @admin.display(description="Last delivery")
    def last_delivery(self, endpoint: Endpoint) -> str:
        last = endpoint.deliveries.order_by("-id").first()
        if last is None:
            return "—"
        status = f" (HTTP {last.last_status})" if last.last_status else ""
        return f"{last.get_state_display()}{status}"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record(
            AuditEntry.Action.WEBHOOK_SAVED,
            request=request,
            via=VIA,
            reference=str(obj),
            details={
                "team": obj.team.name,
                "url": obj.url,
                "events": obj.events,
                "pattern": obj.repository_pattern,
                "format": obj.format,
                "active": obj.active,
                "changed": sorted(form.changed_data) if change else [],
            },
        )

    def delete_model(self, request, obj) -> None:
        name = str(obj)
        super().delete_model(request, obj)
        record(AuditEntry.Action.WEBHOOK_DELETED, request=request, via=VIA, reference=name)

    def delete_queryset(self, request, queryset) -> None:
        for endpoint in queryset:
            self.delete_model(request, endpoint)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "endpoint",
        "event_type",
        "repository",
        "state",
        "attempts",
        "last_status",
    ]
    list_filter = ["state", "event_type"]
    search_fields = ["repository", "event_id", "endpoint__name"]
    actions = ["send_again"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("endpoint__team")
        if request.user.has_perm("webhooks.view_delivery"):
            return queryset
        return queryset.filter(endpoint__team__in=_teams(request))

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) or _administers(request, None)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or (
            _administers(request, None if obj is None else obj.endpoint)
        )

    @admin.action(description="Send the selected deliveries again")
    def send_again(self, request, queryset) -> None:
        count = queryset.exclude(state=Delivery.State.PENDING).update(
            state=Delivery.State.PENDING,
            next_attempt_at=timezone.now(),
            leased_until=None,
            attempts=0,
        )
        for delivery in queryset:
            record(
                AuditEntry.Action.WEBHOOK_REDELIVER,
                request=request,
                via=VIA,
                repository=delivery.repository,
                reference=f"delivery {delivery.pk}",
                details={"endpoint": str(delivery.endpoint), "event_type": delivery.event_type},
            )
        messages.success(request, f"{count} deliveries queued again.")
