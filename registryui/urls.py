from django.contrib import admin
from django.urls import include, path

from registryui.core.views import favicon

# Order matters: action URLs on a reference (``/r/<ref>/-/<action>``) are matched before the
# catalog's catch-all ``/r/<ref>``.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("registryui.events.urls")),
    path("", include("registryui.tokens.urls")),
    path("", include("registryui.teams.urls")),
    path("", include("registryui.cleanup.urls")),
    path("", include("registryui.catalog.urls")),
]

# Error pages (registryui/core/views.py): 400 shows the reference grammar, 404 a search link.
handler400 = "registryui.core.views.bad_request"
handler403 = "registryui.core.views.permission_denied"
handler404 = "registryui.core.views.page_not_found"
handler500 = "registryui.core.views.server_error"
