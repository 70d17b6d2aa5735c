"""The admin of teams, grants and site settings, the user page's teams, and the
"effective permissions" page.

Who may do what here:

- Users with Django's model permissions on teams and grants (superusers, or staff given them
  through a group) manage every team, member and grant.
- Team admins (a team they belong to holds ``admin`` on a pattern) who also have the staff
  flag manage their own teams' grants, and nothing else: they see only those teams, their
  names and members are read-only, the grants they see and edit are the ones inside what they
  administer, and a new or changed grant must stay inside it (``permissions.may_grant``).

Every change to teams, members, grants and site settings is written to the audit log.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from registryui.catalog.models import Repository
from registryui.core.audit import record
from registryui.core.models import AuditEntry

from . import permissions
from .forms import EffectivePermissionsForm, GrantForm, level_labels
from .models import Grant, Level, Membership, SiteSettings, Team
from .patterns import pattern_q, validate_pattern

VIA = "admin"


# -- who is a restricted team admin -----------------------------------------------------------


def _full(request: HttpRequest, action: str, model: str) -> bool:
    """Django's own permission (superusers have them all)."""
    return request.user.has_perm(f"teams.{action}_{model}")


def _team_admin(request: HttpRequest) -> bool:
    """A staff member who administers at least one team through an ``admin`` grant."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    cached = getattr(request, "_teams_admin_ids", None)
    if cached is None:
        cached = set(permissions.administered_teams(user).values_list("pk", flat=True))
        request._teams_admin_ids = cached
    return bool(cached)


def _administers(request: HttpRequest, team: Team | None) -> bool:
    if not _team_admin(request):
        return False
    return team is None or team.pk in request._teams_admin_ids


def _covered(request: HttpRequest, grant: Grant) -> bool:
    """Inside what the team admin administers in the grant's own team."""
    return permissions.may_grant(request.user, grant.pattern, grant.level, grant.team)


def _restricted(request: HttpRequest) -> bool:
    """Working on teams as a team admin rather than with Django's permissions."""
    return not _full(request, "change", "team") and _team_admin(request)


def grant_summary(team: Team) -> str:
    """ "view on hello, delete on team-a/*" (from prefetched grants)."""
    grants = sorted(team.grants.all(), key=lambda g: g.pattern)
    return ", ".join(f"{g.get_level_display()} on {g.pattern}" for g in grants) or "—"


# -- inlines ----------------------------------------------------------------------------------

#: How many repository names the grant preview lists before "and N more".
PREVIEW_NAMES = 5


class MembershipInline(admin.StackedInline):
    model = Membership
    verbose_name = "member"
    verbose_name_plural = "members"
    fields = ["user", "source"]
    # Where a membership comes from is set by whoever made it: a login through the identity
    # provider (which also removes it) or an admin here (always "added by hand").
    readonly_fields = ["source"]
    autocomplete_fields = ["user"]
    extra = 0

    def get_queryset(self, request):
        # Each row's label names its user and team.
        return super().get_queryset(request).select_related("team", "user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user":
            field.label = "User"
            field.help_text = "A member gets every grant of this team. Type to find a user by name."
        return field

    # Memberships have their own model permissions (teams.*_membership); team admins
    # additionally see their own teams' members, read-only.
    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or _administers(request, obj)


def pattern_preview(user, pattern: str) -> str:
    """The repositories ``pattern`` matches today among those ``user`` may see: the count and
    the first names (the saved grants' "Matches today" and the live preview as one types)."""
    repositories = permissions.visible_repositories(
        user, Repository.objects.filter(pattern_q(pattern)).order_by("name")
    )
    names = list(repositories.values_list("name", flat=True)[: PREVIEW_NAMES + 1])
    if not names:
        return "No repository in the catalog matches it today."
    total = len(names) if len(names) <= PREVIEW_NAMES else repositories.count()
    shown = format_html_join(", ", "<code>{}</code>", ((name,) for name in names[:PREVIEW_NAMES]))
    more = total - min(total, PREVIEW_NAMES)
    return format_html(
        '<span class="pattern-preview">{} repositor{}: {}{}</span>',
        total,
        "y" if total == 1 else "ies",
        shown,
        f" and {more} more" if more else "",
    )


class GrantInline(admin.StackedInline):
    model = Grant
    form = GrantForm
    fields = ["pattern", "level", "matches_today"]
    readonly_fields = ["matches_today"]
    extra = 1

    def get_formset(self, request, obj=None, **kwargs):
        # The preview counts only repositories this user may see (the resolver decides); the
        # inline instance lives for one request, so it may keep it.
        self._preview_user = request.user
        if _restricted(request):
            kwargs["form"] = self.form.limited_to(request.user)
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="Matches today")
    def matches_today(self, grant: Grant) -> str:
        """How many repositories (of those the user may see) the saved pattern matches now,
        and the first few names."""
        if grant is None or not grant.pk:
            return "Type a pattern to see which repositories it matches."
        user = getattr(self, "_preview_user", None)
        if user is None:  # never without a user to narrow it for
            return "—"
        return pattern_preview(user, grant.pattern)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if _restricted(request):
            # A grant of their team outside their reach is not theirs to see or change
            # (the team page lists it read-only); the formset only ever binds these rows.
            mine = queryset.filter(team_id__in=request._teams_admin_ids).select_related("team")
            queryset = queryset.filter(pk__in=[g.pk for g in mine if _covered(request, g)])
        return queryset

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or _administers(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) or _administers(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) or _administers(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) or _administers(request, obj)


# -- teams ------------------------------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "grant_list"]
    list_filter = [
        ("grants__level", admin.ChoicesFieldListFilter),
        ("members", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["name", "slug", "description", "members__username", "grants__pattern"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "description"]
    inlines = [MembershipInline, GrantInline]

    def get_queryset(self, request):
        queryset = (
            super()
            .get_queryset(request)
            .annotate(member_total=Count("members", distinct=True))
            .prefetch_related("grants")
        )
        if not self._may_view_all(request):
            queryset = queryset.filter(pk__in=permissions.administered_teams(request.user))
        return queryset

    @staticmethod
    def _may_view_all(request) -> bool:
        return _full(request, "view", "team") or _full(request, "change", "team")

    # Team admins reach their own teams through the same pages, without Django permissions.
    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) or _team_admin(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or _administers(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) or _administers(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if _restricted(request):
            return ["name", "slug", "description", "all_grants"]
        return super().get_readonly_fields(request, obj)

    def get_prepopulated_fields(self, request, obj=None):
        return {} if _restricted(request) else super().get_prepopulated_fields(request, obj)

    def get_fields(self, request, obj=None):
        fields = ["name", "slug", "description"]
        if obj is not None and _restricted(request):
            fields.append("all_grants")
        return fields

    @admin.display(description="members", ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total

    @admin.display(description="grants")
    def grant_list(self, team: Team) -> str:
        return grant_summary(team)

    @admin.display(description="all grants of this team")
    def all_grants(self, team: Team):
        # Team admins edit only the grants inside their reach (the inline below); this shows
        # them the whole picture, including grants only a site administrator can change.
        grants = sorted(team.grants.all(), key=lambda g: g.pattern)
        if not grants:
            return "—"
        return format_html_join(
            ", ", "{} on <code>{}</code>", ((g.get_level_display(), g.pattern) for g in grants)
        )

    # -- audit ------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            record(
                AuditEntry.Action.TEAM_CREATED,
                request=request,
                via=VIA,
                details={"team": obj.name},
                message=f"Created team {obj.name}.",
            )
        elif form.changed_data:
            record(
                AuditEntry.Action.TEAM_CHANGED,
                request=request,
                via=VIA,
                details={"team": obj.name, "fields": form.changed_data},
                message=f"Changed {', '.join(form.changed_data)} of team {obj.name}.",
            )

    def delete_model(self, request, obj) -> None:
        name = obj.name
        super().delete_model(request, obj)
        record(
            AuditEntry.Action.TEAM_DELETED,
            request=request,
            via=VIA,
            details={"team": name},
            message=f"Deleted team {name}.",
        )

    def delete_queryset(self, request, queryset) -> None:
        names = list(queryset.values_list("name", flat=True))
        super().delete_queryset(request, queryset)
        for name in names:
            record(
                AuditEntry.Action.TEAM_DELETED,
                request=request,
                via=VIA,
                details={"team": name},
                message=f"Deleted team {name}.",
            )

    def save_formset(self, request, form, formset, change) -> None:
        team = form.instance
        if formset.model is Grant:
            before = {g.pk: (g.pattern, g.level) for g in Grant.objects.filter(team=team)}
            super().save_formset(request, form, formset, change)
            audit_grants(request, team.name, before, formset)
        elif formset.model is Membership:
            before_users = set(team.members.values_list("username", flat=True))
            super().save_formset(request, form, formset, change)
            after_users = set(team.members.values_list("username", flat=True))
            audit_members(request, {team.name: (before_users, after_users)})
        else:  # pragma: no cover - only the two inlines above exist
            super().save_formset(request, form, formset, change)

    # -- the "effective permissions" page ---------------------------------------------------

    def get_urls(self):
        return [
            path(
                "effective-permissions/",
                self.admin_site.admin_view(self.effective_permissions_view),
                name="teams_effective_permissions",
            ),
            path(
                "pattern-preview/",
                self.admin_site.admin_view(self.pattern_preview_view),
                name="teams_pattern_preview",
            ),
            *super().get_urls(),
        ]

    def pattern_preview_view(self, request: HttpRequest) -> HttpResponse:
        """``?<prefix>-pattern=…``: the live preview of a grant's pattern as it is typed (the
        grant inline's input asks with htmx), narrowed to what the user may see."""
        if not (self._may_view_all(request) or _team_admin(request)):
            raise PermissionDenied
        pattern = next(
            (v.strip() for k, v in request.GET.items() if k == "pattern" or k.endswith("-pattern")),
            "",
        )
        if not pattern:
            text = "Type a pattern to see which repositories it matches."
        else:
            try:
                validate_pattern(pattern)
            except ValidationError as error:
                text = format_html('<span class="pattern-error">{}</span>', error.messages[0])
            else:
                text = format_html("Today: {}", pattern_preview(request.user, pattern))
        response = HttpResponse(text)
        response["Cache-Control"] = "no-store"
        return response

    def effective_permissions_view(self, request: HttpRequest) -> HttpResponse:
        full = self._may_view_all(request)
        if not (full or _team_admin(request)):
            raise PermissionDenied
        form = EffectivePermissionsForm(request.GET or None)
        result = None
        if form.is_bound and not full:
            _members_only(request, form)
        if form.is_valid():
            subject = form.cleaned_data["user"]
            name = form.cleaned_data["repository"]
            if not full and not permissions.can(request.user, Level.ADMIN, name):
                form.add_error(
                    "repository",
                    "You can only look at repositories you administer "
                    f"({', '.join(permissions.administered_patterns(request.user))}).",
                )
            else:
                result = effective_permissions(subject, name, show_other_teams=full)
        context = {
            **self.admin_site.each_context(request),
            "title": "Effective permissions",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/teams/effective_permissions.html", context)


def _members_only(request: HttpRequest, form: EffectivePermissionsForm) -> None:
    """A team admin may ask about the members of the teams they administer (and anonymous
    visitors), nobody else: an unknown name and someone else's get the same answer, so the
    page cannot be used to list the site's users or to learn who is a superuser or inactive.
    """
    if "user" in form.errors:
        subject = None  # no such user: answered below exactly like a non-member
    else:
        subject = form.cleaned_data.get("user")
        if subject is not None and not subject.is_authenticated:
            return
    teams = permissions.administered_teams(request.user)
    if subject is None or not teams.filter(members=subject).exists():
        names = ", ".join(teams.order_by("name").values_list("name", flat=True))
        form.errors["user"] = form.error_class(
            [f"You can only ask about members of the teams you administer ({names})."]
        )
        form.cleaned_data.pop("user", None)


def effective_permissions(subject, name: str, *, show_other_teams: bool) -> dict:
    """The resolver's answer for one user and repository, laid out for the admin page.

    Everything comes from ``registryui.teams.permissions``: this page must never compute
    access a second way.
    """
    level = permissions.level_on(subject, name)
    rules = permissions.explain(subject, name)
    subject_team_ids = set(permissions.access_for(subject).team_ids)
    others = []
    if show_other_teams:
        others = [
            g
            for g in permissions.grants_matching(name).select_related("team")
            if g.team_id not in subject_team_ids
        ]
        others.sort(key=lambda g: (-g.level, g.team.name, g.pattern))
    return {
        "subject": subject,
        "anonymous": not subject.is_authenticated,
        "inactive": subject.is_authenticated and not subject.is_active,
        "superuser": subject.is_authenticated and subject.is_superuser,
        "repository": name,
        "exists": Repository.objects.filter(name=name).exists(),
        "level": level,
        "level_label": Level(level).label if level else "none (the repository is hidden)",
        "actions": level_labels(level),
        "rules": rules,
        "other_grants": others,
    }


def audit_grants(request, team_name: str, before: dict[int, tuple[str, int]], formset) -> None:
    for grant in formset.new_objects:
        record(
            AuditEntry.Action.GRANT_ADDED,
            request=request,
            via=VIA,
            details={
                "team": team_name,
                "pattern": grant.pattern,
                "level": grant.get_level_display(),
            },
            message=f"Team {team_name}: {grant.get_level_display()} on {grant.pattern}.",
        )
    for grant, _fields in formset.changed_objects:
        old_pattern, old_level = before.get(grant.pk, ("", 0))
        old_label = Level(old_level).label if old_level else "?"
        record(
            AuditEntry.Action.GRANT_CHANGED,
            request=request,
            via=VIA,
            details={
                "team": team_name,
                "pattern": grant.pattern,
                "level": grant.get_level_display(),
                "was": {"pattern": old_pattern, "level": old_label},
            },
            message=f"Team {team_name}: {grant.get_level_display()} on {grant.pattern} "
            f"(was {old_label} on {old_pattern}).",
        )
    for grant in formset.deleted_objects:
        pattern, level = before.get(grant.pk, (grant.pattern, grant.level))
        record(
            AuditEntry.Action.GRANT_REMOVED,
            request=request,
            via=VIA,
            details={"team": team_name, "pattern": pattern, "level": Level(level).label},
            message=f"Team {team_name}: no longer {Level(level).label} on {pattern}.",
        )


def audit_members(request, changes: dict[str, tuple[set[str], set[str]]]) -> None:
    """``changes`` maps a team name to its member usernames before and after."""
    for team_name, (before, after) in changes.items():
        for username in sorted(after - before):
            record(
                AuditEntry.Action.TEAM_MEMBER_ADDED,
                request=request,
                via=VIA,
                details={"team": team_name, "user": username},
                message=f"Added {username} to team {team_name}.",
            )
        for username in sorted(before - after):
            record(
                AuditEntry.Action.TEAM_MEMBER_REMOVED,
                request=request,
                via=VIA,
                details={"team": team_name, "user": username},
                message=f"Removed {username} from team {team_name}.",
            )


# -- site settings: one row -------------------------------------------------------------------


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    fieldsets = [
        ("Anonymous visitors", {"fields": ["anonymous_view", "public_patterns"]}),
        ("Logged-in users in no team", {"fields": ["no_team_patterns"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # the one row is created on first visit; there is never a second

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # A missing row reads as the defaults (SiteSettings.load), so creating it with those
        # defaults changes nobody's access; it gives the single change page something to edit.
        obj, _ = SiteSettings.objects.get_or_create(pk=1)
        return HttpResponseRedirect(
            reverse(
                "admin:teams_sitesettings_change", args=[obj.pk], current_app=self.admin_site.name
            )
        )

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if form.changed_data:
            record(
                AuditEntry.Action.SITE_SETTINGS_CHANGED,
                request=request,
                via=VIA,
                details={f: form.cleaned_data[f] for f in form.changed_data},
                message=f"Changed site settings: {', '.join(form.changed_data)}.",
            )


# -- the user page: their teams ---------------------------------------------------------------


class UserTeamsInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    verbose_name = "team"
    verbose_name_plural = "teams"
    fields = ["team", "source", "team_grants"]
    readonly_fields = ["source", "team_grants"]
    autocomplete_fields = ["team"]
    extra = 0

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("team", "user")
            .prefetch_related("team__grants")
        )

    @admin.display(description="grants")
    def team_grants(self, membership) -> str:
        return grant_summary(membership.team) if membership.pk else ""


User = get_user_model()
_BaseUserAdmin = (
    type(admin.site.get_model_admin(User)) if admin.site.is_registered(User) else UserAdmin
)


class TeamsUserAdmin(_BaseUserAdmin):
    """The user admin registered before ours (Django's, or a customised one), plus the
    user's teams and a link to their effective permissions."""

    inlines = [*_BaseUserAdmin.inlines, UserTeamsInline]
    list_filter = [*_BaseUserAdmin.list_filter, "registry_teams"]

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        user = form.instance
        teams_before = set(user.registry_teams.values_list("name", flat=True))
        super().save_formset(request, form, formset, change)
        teams_after = set(user.registry_teams.values_list("name", flat=True))
        username = user.get_username()
        audit_members(
            request,
            {
                name: (
                    {username} if name in teams_before else set(),
                    {username} if name in teams_after else set(),
                )
                for name in teams_before | teams_after
            },
        )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, TeamsUserAdmin)
