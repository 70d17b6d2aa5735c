from django.contrib import admin
from django.urls import include, path

# Order matters: action URLs on a reference (``/r/<ref>/-/<action>``) are matched before the
# catalog's catch-all ``/r/<ref>``.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("registryui.events.urls")),
    path("", include("registryui.tokens.urls")),
    path("", include("registryui.teams.urls")),
    path("", include("registryui.cleanup.urls")),
    path("", include("registryui.catalog.urls")),
]
