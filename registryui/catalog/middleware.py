"""The registry budget of a web request (it needs ``catalog.upstream``, so it is not in core)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .upstream import interactive


class RegistryBudgetMiddleware:
    """Every web request is a person waiting: registry calls share one short budget.

    See ``upstream.interactive``: ``REGISTRY_INTERACTIVE_TIMEOUT`` seconds
    for the whole request, and an immediate answer while the registry is known to be down.
    Management commands (the sync, ``apply_retention``) run outside it with the long timeouts.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with interactive():
            return self.get_response(request)
