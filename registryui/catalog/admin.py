"""The mirror in the admin: sync runs with their errors, repositories, tags and manifests.

Everything here is read-only, superusers included. The rows are a cache of the registry that
the sync rewrites; an edit in the admin would be silently undone by the next sync (or worse,
believed). Changing the registry goes through the UI's audited actions.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from registryui.core.admin import ReadOnlyMixin
from registryui.lib.humanize import iec_size

from .models import IndexChild, Label, Layer, Manifest, Repository, SyncRun, SyncRunError, Tag


class ResolverViewOnSiteMixin:
    """The "view on site" of rows of one repository: ``registryui.core.viewonsite`` redirects only
    when the resolver lets the user see that repository (``repository_name`` of the object).

    The resolver sits above the catalog, so this only names the repository; the check itself
    is the one the teams app registers with ``viewonsite.register_repository_check``."""

    def repository_name(self, obj: Any) -> str:
        # Rows of repository data (tags) belong to ``obj.repository``; RepositoryAdmin overrides.
        return obj.repository.name


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


def _pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


def _changelist_link(model: str, query: str, text: str) -> str:
    url = reverse(f"admin:catalog_{model}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


# -- sync runs --------------------------------------------------------------------------------


class SyncRunErrorInline(ReadOnlyInline):
    model = SyncRunError
    fields = ["repository", "code", "message"]
    readonly_fields = fields
    verbose_name_plural = "errors"


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "status",
        "trigger",
        "scope",
        "repositories",
        "repositories_failed",
        "repositories_removed",
        "tags_seen",
        "tag_changes",
        "manifests_fetched",
        "requests_made",
        "seconds",
    ]
    list_filter = ["status", "trigger", "started_at"]
    search_fields = ["scope", "error", "errors__repository", "errors__message"]
    date_hierarchy = "started_at"
    list_per_page = 50
    inlines = [SyncRunErrorInline]
    fields = [
        ("started_at", "finished_at", "seconds"),
        ("status", "trigger", "scope"),
        "error",
        (
            "repositories_seen",
            "repositories_synced",
            "repositories_failed",
            "repositories_removed",
        ),
        ("tags_seen", "tags_added", "tags_updated", "tags_removed"),
        ("manifests_fetched", "requests_made"),
        "requests_by_kind_pretty",
    ]
    readonly_fields = [
        "started_at",
        "finished_at",
        "seconds",
        "status",
        "trigger",
        "scope",
        "error",
        "repositories_seen",
        "repositories_synced",
        "repositories_failed",
        "repositories_removed",
        "tags_seen",
        "tags_added",
        "tags_updated",
        "tags_removed",
        "manifests_fetched",
        "requests_made",
        "requests_by_kind_pretty",
    ]

    @admin.display(description="repositories synced")
    def repositories(self, run: SyncRun) -> str:
        return f"{run.repositories_synced}/{run.repositories_seen}"

    @admin.display(description="tags +/~/-")
    def tag_changes(self, run: SyncRun) -> str:
        return f"+{run.tags_added} ~{run.tags_updated} -{run.tags_removed}"

    @admin.display(description="seconds")
    def seconds(self, run: SyncRun) -> str:
        return f"{run.duration.total_seconds():.1f}" if run.duration else "running"

    @admin.display(description="requests by kind")
    def requests_by_kind_pretty(self, run: SyncRun) -> str:
        return _pretty_json(run.requests_by_kind)


# -- repositories, tags, manifests ------------------------------------------------------------


class SyncStateFilter(admin.SimpleListFilter):
    title = "last sync"
    parameter_name = "sync"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "failed"), ("never", "never synced")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "failed":
            return queryset.exclude(last_sync_error="")
        if self.value() == "never":
            return queryset.filter(last_synced_at__isnull=True)
        return queryset


class EmptyFilter(admin.SimpleListFilter):
    title = "tags"
    parameter_name = "tags"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("none", "no tags"), ("some", "with tags")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "none":
            return queryset.filter(tag_count=0)
        if self.value() == "some":
            return queryset.filter(tag_count__gt=0)
        return queryset


@admin.register(Repository)
class RepositoryAdmin(ResolverViewOnSiteMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "tag_count",
        "size_display",
        "last_updated_at",
        "last_synced_at",
        "sync_ok",
    ]
    list_filter = [SyncStateFilter, EmptyFilter, ("namespace", admin.AllValuesFieldListFilter)]
    search_fields = ["name"]
    list_per_page = 100
    fields = [
        "name",
        "namespace",
        ("tag_count", "tags_link", "size_display"),
        ("first_seen_at", "last_updated_at"),
        ("last_synced_at", "last_sync_error_at"),
        "last_sync_error",
    ]
    readonly_fields = [
        "name",
        "namespace",
        "tag_count",
        "tags_link",
        "size_display",
        "first_seen_at",
        "last_updated_at",
        "last_synced_at",
        "last_sync_error_at",
        "last_sync_error",
    ]

    def repository_name(self, obj: Repository) -> str:
        return obj.name

    @admin.display(description="size", ordering="size")
    def size_display(self, repository: Repository) -> str:
        return iec_size(repository.size)

    @admin.display(description="last sync ok", boolean=True)
    def sync_ok(self, repository: Repository) -> bool | None:
        if repository.last_synced_at is None and not repository.last_sync_error:
            return None
        return not repository.sync_failed

    @admin.display(description="tags")
    def tags_link(self, repository: Repository) -> str:
        return _changelist_link(
            "tag", f"repository__id__exact={repository.pk}", f"{repository.tag_count} tags"
        )


@admin.register(Tag)
class TagAdmin(ResolverViewOnSiteMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["reference", "digest", "kind", "changed_at", "first_seen_at"]
    list_filter = ["manifest__kind", "changed_at"]
    search_fields = ["repository__name", "name", "manifest__digest"]
    list_per_page = 100
    fields = ["repository", "name", "manifest_link", "first_seen_at", "changed_at"]
    readonly_fields = fields
    ordering = ["repository__name", "name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # A manifest's raw bytes, history and config can be large: the list needs none of it.
        return (
            super()
            .get_queryset(request)
            .select_related("repository", "manifest")
            .defer("manifest__raw", "manifest__history", "manifest__config", "manifest__labels")
        )

    @admin.display(description="tag", ordering="repository__name")
    def reference(self, tag: Tag) -> str:
        return f"{tag.repository.name}:{tag.name}"

    @admin.display(description="digest", ordering="manifest__digest")
    def digest(self, tag: Tag) -> str:
        return tag.manifest.digest

    @admin.display(description="kind", ordering="manifest__kind")
    def kind(self, tag: Tag) -> str:
        return tag.manifest.get_kind_display()

    @admin.display(description="manifest")
    def manifest_link(self, tag: Tag) -> str:
        url = reverse("admin:catalog_manifest_change", args=[tag.manifest_id])
        return format_html('<a href="{}">{}</a>', url, tag.manifest.digest)


class LayerInline(ReadOnlyInline):
    model = Layer
    fields = ["position", "digest", "size", "media_type"]
    readonly_fields = fields


class IndexChildInline(ReadOnlyInline):
    model = IndexChild
    fk_name = "index"
    fields = ["position", "child", "os", "architecture", "variant", "is_attestation"]
    readonly_fields = fields
    verbose_name_plural = "platform children"


class LabelInline(ReadOnlyInline):
    model = Label
    fields = ["key", "value"]
    readonly_fields = fields


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["digest", "kind", "media_type", "platforms", "total", "created", "fetched_at"]
    list_filter = ["kind", "media_type", "os", "architecture"]
    search_fields = ["digest", "config_digest"]
    list_per_page = 100
    inlines = [IndexChildInline, LayerInline, LabelInline]
    fields = [
        "digest",
        ("kind", "media_type", "size"),
        "tags_link",
        ("config_digest", "config_media_type", "config_size"),
        ("os", "architecture", "variant", "platforms"),
        ("created", "fetched_at", "total"),
        "config_pretty",
        "history_pretty",
        "raw_pretty",
    ]
    readonly_fields = [
        "digest",
        "kind",
        "media_type",
        "size",
        "tags_link",
        "config_digest",
        "config_media_type",
        "config_size",
        "os",
        "architecture",
        "variant",
        "platforms",
        "created",
        "fetched_at",
        "total",
        "config_pretty",
        "history_pretty",
        "raw_pretty",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return queryset.defer("raw", "history", "config", "labels")
        return queryset

    @admin.display(description="pull size", ordering="total_size")
    def total(self, manifest: Manifest) -> str:
        return iec_size(manifest.total_size)

    @admin.display(description="tags")
    def tags_link(self, manifest: Manifest) -> str:
        return _changelist_link("tag", f"manifest__id__exact={manifest.pk}", "tags on this digest")

    @admin.display(description="config")
    def config_pretty(self, manifest: Manifest) -> str:
        return _pretty_json(manifest.config)

    @admin.display(description="history")
    def history_pretty(self, manifest: Manifest) -> str:
        return _pretty_json(manifest.history)

    @admin.display(description="manifest as served")
    def raw_pretty(self, manifest: Manifest) -> str:
        try:
            return _pretty_json(json.loads(manifest.raw))
        except ValueError:
            return format_html("<pre>{}</pre>", manifest.raw)
