"""The admin's "view on site" shortcut (``/admin/r/<content type>/<id>/``), asking first.

Django's own shortcut redirects any staff member to ``get_absolute_url()`` of any object by
id, so a team admin (staff, to manage their grants) could walk the ids of repositories, tags
and retention policies and read hidden names in the ``Location`` header. This one answers only
for objects the admin itself would show the user: the model is registered, the object is in
its ModelAdmin's queryset for this request, the ModelAdmin grants view permission, and, for
models that hold repository data, the resolver agrees: a ModelAdmin's
``visible_on_site(request, obj)``, or for one that names the object's repository
(``repository_name(obj)``) the check registered with ``register_repository_check``.
The resolver sits above core, so the teams app registers that check in its ``ready()``; with
no check registered, rows of a repository are never shown (it fails closed). Everything else is
the same 404, whether the object exists or not. It is routed in ``registryui/urls.py`` ahead of
the admin's own URL of the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponseRedirect

NOT_FOUND = "There is no such object, or it is not yours to see."

#: ``check(user, repository name) -> bool``: whether the user may see that repository.
_repository_checks: list[Callable[[object, str], bool]] = []


def register_repository_check(check: Callable[[object, str], bool]) -> None:
    """Let ``check(user, name)`` decide on rows of repository ``name`` (the resolver's layer)."""
    if check not in _repository_checks:
        _repository_checks.append(check)


def _repository_visible(user, name: str) -> bool:
    return bool(_repository_checks) and all(check(user, name) for check in _repository_checks)


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
    repository_name = getattr(model_admin, "repository_name", None)
    if repository_name is not None and not _repository_visible(request.user, repository_name(obj)):
        raise Http404(NOT_FOUND)
    get_absolute_url = getattr(obj, "get_absolute_url", None)
    if get_absolute_url is None:
        raise Http404(NOT_FOUND)
    return HttpResponseRedirect(get_absolute_url())
