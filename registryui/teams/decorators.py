"""View decorators that ask the resolver whether a visitor may be here at all."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login

from .models import SiteSettings


def viewer_required(view):
    """Logged-in users pass; anonymous visitors pass only when the site allows anonymous
    viewing (they then see what the public patterns allow); others go to the login page.

    What each visitor sees inside the page is still narrowed by the resolver.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated or SiteSettings.load().anonymous_view:
            return view(request, *args, **kwargs)
        return redirect_to_login(request.get_full_path())

    return wrapper
