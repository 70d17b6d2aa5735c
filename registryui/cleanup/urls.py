from __future__ import annotations

from django.urls import path

from . import promote_views, stale_views, views

app_name = "cleanup"

# ``/r/<reference>/-/<action>``: "-" cannot start a path component of a repository name, so
# the reference (which may hold "/", ":" and "@") ends unambiguously before "/-/".
urlpatterns = [
    path("r/<path:reference>/-/delete", views.delete, name="delete"),
    path("r/<path:reference>/-/delete-image", views.delete_image, name="delete_image"),
    path("r/<path:reference>/-/retag", views.retag_view, name="retag"),
    path("r/<path:reference>/-/restore", views.restore_view, name="restore"),
    path("r/<path:name>/-/bulk-delete", views.bulk_delete, name="bulk_delete"),
    path("r/<path:reference>/-/add-tags", promote_views.add_tags_view, name="add_tags"),
    path("r/<path:reference>/-/copy", promote_views.copy_view, name="copy"),
    path("results/<uuid:pk>/", views.result_view, name="result"),
    path("retention/", views.retention_list, name="retention"),
    path("retention/<int:pk>/", views.retention_preview, name="retention_preview"),
    path("retention/<int:pk>/apply", views.retention_apply, name="retention_apply"),
    path("retention/<int:pk>/enable", views.retention_enable, name="retention_enable"),
    path("retention/<int:pk>/disable", views.retention_disable, name="retention_disable"),
    path("stale/", stale_views.stale_images, name="stale"),
    path("stale/preview", stale_views.stale_preview, name="stale_preview"),
]
