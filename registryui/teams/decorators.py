"""View decorators that decide whether a visitor may be here at all: the one module for them.

Each sends an anonymous visitor to the login page the htmx-aware way (``_to_login``).
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

from .models import SiteSettings


def _to_login(request):
    """The login page, for a full page or (as a client-side redirect) for an htmx request.

    An htmx request that followed a plain 302 would swap the whole login page into the
    fragment's target; HX-Redirect makes the browser load it as a page instead.
    """
    if getattr(request, "htmx", False):
        current = request.htmx.current_url_abs_path or request.get_full_path()
        response = redirect_to_login(current, resolve_url(settings.LOGIN_URL))
        return HttpResponseClientRedirect(response["Location"])
    return redirect_to_login(request.get_full_path())


def viewer_required(view):
    """Logged-in users pass; anonymous visitors pass only when the site allows anonymous
    viewing (they then see what the public patterns allow); others go to the login page.

    What each visitor sees inside the page is still narrowed by the resolver.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated or SiteSettings.load().anonymous_view:
            return view(request, *args, **kwargs)
        return _to_login(request)

    return wrapper


def member_required(view):
    """Logged-in users only (pages about one's own account: profile, tokens), with the same
    htmx-aware redirect to the login page as ``viewer_required``."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return _to_login(request)

    return wrapper


def staff_required(view):
    """Staff only (the status page): anonymous visitors go to the login page (htmx-aware),
    logged-in users who are not active staff get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return _to_login(request)
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("Only staff members can see the status page.")
        return view(request, *args, **kwargs)

    return wrapper
