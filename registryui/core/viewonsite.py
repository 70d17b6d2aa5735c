"""The admin's "view on site" shortcut (``/admin/r/<content type>/<id>/``), asking first.

Django's own shortcut redirects any staff member to ``get_absolute_url()`` of any object by
id, so a team admin (staff, to manage their grants) could walk the ids of repositories, tags
and retention policies and read hidden names in the ``Location`` header. This one answers only
for objects the admin itself would show the user: the model is registered, the object is in
its ModelAdmin's queryset for this request, the ModelAdmin grants view permission, and, for
models that hold repository data, the ModelAdmin's ``visible_on_site(request, obj)`` (which
asks the resolver) agrees. Everything else is the same 404, whether the object exists or not.
It is routed in ``registryui/urls.py`` ahead of the admin's own URL of the same path.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponseRedirect

NOT_FOUND = "There is no such object, or it is not yours to see."


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str):
    site = admin.site
    try:
        model = ContentType.objects.get(pk=content_type_id).model_class()
    except ContentType.DoesNotExist:
        raise Http404(NOT_FOUND) from None
    if model is None or not site.is_registered(model):
        raise Http404(NOT_FOUND)
    model_admin = site.get_model_admin(model)
    try:
        obj = model_admin.get_queryset(request).get(pk=object_id)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
        raise Http404(NOT_FOUND) from None
    if not model_admin.has_view_or_change_permission(request, obj):
        raise Http404(NOT_FOUND)
    visible_on_site = getattr(model_admin, "visible_on_site", None)
    if visible_on_site is not None and not visible_on_site(request, obj):
        raise Http404(NOT_FOUND)
    get_absolute_url = getattr(obj, "get_absolute_url", None)
    if get_absolute_url is None:
        raise Http404(NOT_FOUND)
    return HttpResponseRedirect(get_absolute_url())
