"""Edit a repository's overview; star or unstar it.

``/r/<name>/-/overview`` (GET the form, POST saves: push permission) and ``/r/<name>/-/star``
(POST: any signed-in user who may see the repository). Both go through the resolver before
anything is read, are audited, and redirect after the POST.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.lib.reference import is_valid_name
from registryui.teams.decorators import member_required
from registryui.teams.models import Level
from registryui.teams.permissions import get_repository_or_404

from .forms import OverviewForm
from .models import RepositoryOverview, Star
from .queries import image_labels


def _repository(request: HttpRequest, name: str, action: int):
    if not is_valid_name(name):
        raise BadRequest(
            f"{name!r} is not a repository name: this action works on /r/NAME/-/…, "
            "without a tag or digest."
        )
    return get_repository_or_404(request.user, name, action)


@member_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, name: str) -> HttpResponse:
    repository = _repository(request, name, Level.PUSH)
    row = RepositoryOverview.objects.filter(name=repository.name).first()
    form = OverviewForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        before = {"description": row.description, "readme": row.readme} if row else {}
        overview = form.save(commit=False)
        overview.name = repository.name
        overview.updated_at = timezone.now()
        overview.updated_by = request.user
        overview.save()
        record(
            AuditEntry.Action.OVERVIEW_CHANGED,
            request=request,
            repository=repository.name,
            details={
                "description": overview.description,
                "description_before": before.get("description", ""),
                "readme_chars": len(overview.readme),
                "readme_changed": before.get("readme", "") != overview.readme,
            },
        )
        messages.success(request, f"The overview of {repository.name} was saved.")
        return redirect(repository.get_absolute_url())
    return render(
        request,
        "overview/edit.html",
        {"repository": repository, "form": form, "labels": image_labels(repository)},
        status=400 if form.is_bound else 200,
    )


@member_required
@require_POST
def star(request: HttpRequest, name: str) -> HttpResponse:
    repository = _repository(request, name, Level.VIEW)
    wanted = request.POST.get("star")
    if wanted not in ("on", "off"):
        raise BadRequest("Say star=on or star=off.")
    if wanted == "on":
        _, changed = Star.objects.get_or_create(user=request.user, name=repository.name)
    else:
        changed = bool(Star.objects.filter(user=request.user, name=repository.name).delete()[0])
    if changed:
        record(
            AuditEntry.Action.STARRED if wanted == "on" else AuditEntry.Action.UNSTARRED,
            request=request,
            repository=repository.name,
        )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) or not target.startswith("/"):
        target = repository.get_absolute_url()
    return redirect(target)
