"""``/push/``: where the user may push, and the commands to log in, tag, push and pull.

A GET form (the page works without JavaScript); with htmx, typing in the form swaps the
commands alone (``catalog/push.html#commands``), rendered by the same builders.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from registryui.teams.decorators import viewer_required

from .pushing import build_guide
from .views import render_page, wants_fragment


@require_safe
@viewer_required
def push_page(request: HttpRequest) -> HttpResponse:
    guide = build_guide(request.user, request.GET)
    # An htmx request from the repository page's panel also swaps its pull commands (oob).
    context = {"guide": guide, "oob": wants_fragment(request)}
    return render_page(request, "catalog/push.html", context, "commands")
