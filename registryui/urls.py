from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import URLPattern, include, path

from registryui.core.viewonsite import view_on_site
from registryui.core.views import favicon
from registryui.events import urls as events_urls
from registryui.ops import urls as ops_urls

#: Django's account URLs that send mail: routed only when mail is configured.
PASSWORD_RESET_NAMES = frozenset(
    {"password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"}
)


def account_urls(password_reset: bool) -> list[URLPattern]:
    """Login, logout and password change; password reset too when mail can be sent.

    Without a mail server the reset form would either fail with a 500 or pretend to send a
    message that never arrives, so it does not exist (404) unless ``EMAIL_HOST`` is set.
    """
    return [
        pattern
        for pattern in auth_urls.urlpatterns
        if password_reset or pattern.name not in PASSWORD_RESET_NAMES
    ]


# Order matters: action URLs on a reference (``/r/<ref>/-/<action>``) are matched before the
# catalog's catch-all ``/r/<ref>``.
urlpatterns = [
    # Ahead of the admin's own "view on site" shortcut: this one asks the resolver first.
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="admin_view_on_site",
    ),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    # The REST API (registryui/api): JSON and problem documents only, under /api/.
    path("api/", include("registryui.api.urls")),
    # Login and logout (rate limit, audit, "Sign in with …") before Django's own views.
    path("accounts/", include("registryui.accounts.urls")),
    path("accounts/", include(account_urls(settings.PASSWORD_RESET_ENABLED))),
    # The notification endpoint (events) and the status page and /healthz (ops) share the
    # ``events`` namespace, so the URL names stayed the same when the pages moved to ops.
    path("", include((events_urls.urlpatterns + ops_urls.urlpatterns, "events"))),
    path("", include("registryui.tokens.urls")),
    path("", include("registryui.teams.urls")),
    path("", include("registryui.cleanup.urls")),
    path("", include("registryui.storage.urls")),
    path("", include("registryui.overview.urls")),
    path("", include("registryui.browse.urls")),
]

# Error pages (registryui/core/views.py): 400 shows the reference grammar, 404 a search link.
handler400 = "registryui.core.views.bad_request"
handler403 = "registryui.core.views.permission_denied"
handler404 = "registryui.core.views.page_not_found"
handler500 = "registryui.core.views.server_error"
