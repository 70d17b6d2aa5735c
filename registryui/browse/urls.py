from django.urls import path

from . import attached_views, push_views, views

# The namespace stayed "catalog" when the views moved here, so URL names are unchanged.
app_name = "catalog"

urlpatterns = [
    path("", views.repository_list, name="repositories"),
    path("search/", views.search_view, name="search"),
    path("push/", push_views.push_page, name="push"),
    path("r/<path:reference>/-/sbom", attached_views.sbom, name="sbom"),
    path("r/<path:reference>/-/sbom.json", attached_views.sbom_download, name="sbom_download"),
    # The catch-all for references: /r/<name>, /r/<name>:<tag>, /r/<name>@<digest>. Included
    # last from registryui/urls.py so that /r/<reference>/-/<action> of other apps wins.
    path("r/<path:reference>", views.reference, name="reference"),
]
