"""Site-wide error pages: 400 (with the reference grammar), 403, 404 (with a search link), 500.

Wired as ``handler400/403/404/500`` in ``registryui/urls.py``. Each page says what went wrong
in a sentence; none shows a traceback. Messages of ``BadRequest``, ``PermissionDenied`` and
``Http404`` raised by our code are written for users and shown; anything else (Django's own
``SuspiciousOperation``s, the URL resolver's 404) gets a generic sentence.
"""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.views.decorators.csrf import requires_csrf_token

from registryui.lib.reference import GRAMMAR, BadReference, name_part

#: Longest exception message shown on a page (a pasted reference can be long).
MAX_MESSAGE = 500


def _message(exception: BaseException | None) -> str:
    if exception is None or not exception.args:
        return ""
    first = exception.args[0]
    return first[:MAX_MESSAGE] if isinstance(first, str) else ""


def _search_suggestion(path: str) -> str:
    """What to prefill the search box with on a 404: the reference of a /r/ URL."""
    if not path.startswith("/r/"):
        return ""
    text = path.removeprefix("/r/").split("/-/", 1)[0].strip("/")
    # Search the repository part: the tag or digest was what did not exist.
    return name_part(text)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    is_ours = isinstance(exception, BadRequest)
    context = {
        "message": _message(exception) if is_ours else "",
        "grammar": GRAMMAR if isinstance(exception, BadReference) else "",
    }
    return render(request, "400.html", context, status=400)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    return render(request, "403.html", {"message": _message(exception)}, status=403)


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    context = {
        "message": _message(exception),
        "suggestion": _search_suggestion(request.path),
    }
    return render(request, "404.html", context, status=404)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the database (sessions, users) may be what failed.
    template = loader.get_template("500.html")
    return HttpResponseServerError(template.render({}))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the site's own 403 page instead of Django's (which has inline CSS
    that the Content-Security-Policy blocks)."""
    message = (
        "The form was refused because its security token was missing or out of date. "
        "Go back, reload the page and try again."
    )
    return render(request, "403.html", {"message": message}, status=403)


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers (and the admin's pages, which name no icon) ask for
    whatever the page says: a permanent redirect to the vendored icon, not a logged 404."""
    return redirect(static("favicon.ico"), permanent=True)
