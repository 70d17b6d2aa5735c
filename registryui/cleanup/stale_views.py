"""The stale images view (issue 16): ``/stale/`` lists them, ``/stale/preview`` runs the same
rules as a retention dry run over the repositories the user may delete in."""

from __future__ import annotations

from django.core.paginator import InvalidPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from registryui.teams.decorators import member_required, viewer_required
from registryui.teams.models import Level
from registryui.teams.permissions import access_for

from . import retention
from .forms import StaleForm
from .models import RetentionPolicy
from .stale import find_stale


@viewer_required
def stale_images(request: HttpRequest) -> HttpResponse:
    form = StaleForm(request.GET)
    pulled, pushed = form.days()
    report = find_stale(request.user, pulled_days=pulled, pushed_days=pushed)
    try:
        report.page(form.page_number())
    except InvalidPage:
        raise Http404("No such page of stale images.") from None
    return render(
        request,
        "cleanup/stale.html",
        {
            "form": form,
            "report": report,
            "may_delete": bool(access_for(request.user).patterns_at(Level.DELETE)),
        },
    )


def stale_policy(pulled: int, pushed: int) -> RetentionPolicy:
    """An unsaved policy with the view's rules: nothing else keeps a tag (no saved policy
    is changed; this one can be previewed, never applied)."""
    return RetentionPolicy(
        name=f"Stale images: not pulled in {pulled} days, not pushed in {pushed} days",
        repository_pattern="*",
        keep_last=0,
        not_pulled_days=pulled,
        pushed_before_days=pushed,
        enabled=False,
    )


@member_required
def stale_preview(request: HttpRequest) -> HttpResponse:
    deletable = retention.deletable_repositories(request.user)
    pulled, pushed = StaleForm(request.GET).days()
    policy = stale_policy(pulled, pushed)
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    return render(
        request,
        "cleanup/retention_preview.html",
        {"policy": policy, "preview": planned, "adhoc": True},
    )
