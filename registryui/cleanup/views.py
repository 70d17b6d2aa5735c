"""Delete a tag, delete an image, bulk delete, retag, and retention previews and runs.

GET shows a confirmation built from the database (what goes, which siblings stay, the bytes
garbage-collect would reclaim); POST acts. Access goes through ``browse.lookup.resolve`` and
the teams resolver before anything reaches the registry.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from registryui.browse.lookup import Resolved, parse_url_reference, resolve
from registryui.browse.tags import clean_filter, matching_names
from registryui.core.models import AuditEntry
from registryui.lib.natural import natural_sorted
from registryui.lib.reference import is_valid_tag, reference_url, short_digest
from registryui.teams.decorators import member_required
from registryui.teams.models import Level
from registryui.teams.patterns import covers
from registryui.teams.permissions import access_for, get_repository_or_404

from . import results, retention
from .actions import bulk_delete as bulk_delete_tags
from .actions import delete_tags, held_by_index
from .forms import MAX_BULK_TAGS, NOTHING_SELECTED, RetagForm, confirmed_items, selected_tags
from .models import RetentionPolicy
from .outcomes import Actor, Execution, RetagStatus
from .plan import build_plan
from .restore import offered, restore
from .retag import left_untagged, move_sides, retag


def problem(request: HttpRequest, title: str, message: str, *, status: int, **extra):
    return render(
        request,
        "cleanup/problem.html",
        {"title": title, "message": message, **extra},
        status=status,
    )


def _actor(request: HttpRequest, **extra) -> Actor:
    return Actor(request=request, user=request.user, via="ui", extra=extra)


def _resolve_or_gone(request: HttpRequest, reference: str, action: int) -> Resolved | HttpResponse:
    """Resolve; a POST about a tag or digest that is no longer there says "already gone".

    A hidden or unknown repository stays a plain 404 (asked again on this failure path only).
    """
    try:
        return resolve(request.user, reference, action)
    except Http404:
        parsed = parse_url_reference(reference)
        if request.method != "POST" or not (parsed.tag or parsed.digest):
            raise
        repository = get_repository_or_404(request.user, parsed.name, action)
    what = f"{repository.name}:{parsed.tag}" if parsed.tag else f"{repository.name}@{parsed.digest}"
    return problem(
        request,
        "Already gone",
        f"{what} is already gone: nothing was deleted.",
        status=404,
        repository=repository,
    )


# -- delete one tag -------------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, reference: str) -> HttpResponse:
    """``/r/<repo>:<tag>/-/delete`` deletes a tag; ``/r/<repo>@<digest>/-/delete`` an image."""
    resolved = _resolve_or_gone(request, reference, Level.DELETE)
    if isinstance(resolved, HttpResponse):
        return resolved
    if resolved.reference.digest:
        return _delete_image(request, resolved)
    if resolved.tag is None:
        raise BadRequest("Name the tag to delete: /r/NAME:TAG/-/delete.")
    repository, tag = resolved.repository, resolved.tag
    if request.method == "POST":
        expected = confirmed_items(request.POST.getlist("confirm"))
        if set(expected) != {tag.name}:
            raise BadRequest("The confirmation is for another tag.")
        execution = delete_tags(repository, expected, _actor(request))
        return _result(request, execution, title=f"Delete {repository.name}:{tag.name}")
    plan = build_plan(repository, [tag.name])
    return render(
        request,
        "cleanup/delete_tag.html",
        {"repository": repository, "tag": tag, "plan": plan, "confirm_url": request.path},
    )


# -- delete an image (the digest and every tag on it) ----------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def delete_image(request: HttpRequest, reference: str) -> HttpResponse:
    resolved = _resolve_or_gone(request, reference, Level.DELETE)
    if isinstance(resolved, HttpResponse):
        return resolved
    if resolved.manifest is None:
        raise BadRequest("Name the image to delete: /r/NAME:TAG/-/delete-image or /r/NAME@DIGEST.")
    return _delete_image(request, resolved)


def _delete_image(request: HttpRequest, resolved: Resolved) -> HttpResponse:
    repository, manifest = resolved.repository, resolved.manifest
    assert manifest is not None
    held = held_by_index(repository, manifest.digest)
    if held is not None:
        if request.method == "POST":
            held.refuse(_actor(request))
        return problem(
            request,
            "This image belongs to a multi-platform index",
            held.message,
            status=409,
            repository=repository,
            holders=held.holders,
        )
    tags = natural_sorted(repository.tags.filter(manifest=manifest).values_list("name", flat=True))
    if request.method == "POST":
        expected = confirmed_items(request.POST.getlist("confirm"))
        if set(expected.values()) != {manifest.digest}:
            raise BadRequest("The confirmation is for another image.")
        execution = delete_tags(repository, expected, _actor(request), mode="image")
        return _result(
            request,
            execution,
            title=f"Delete image {repository.name}@{short_digest(manifest.digest)}",
        )
    plan = build_plan(repository, tags)
    return render(
        request,
        "cleanup/delete_image.html",
        {
            "repository": repository,
            "manifest": manifest,
            "tags": tags,
            "plan": plan,
            "confirm_url": reference_url(
                repository.name, digest=manifest.digest, action="delete-image"
            ),
        },
    )


# -- bulk delete ----------------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def bulk_delete(request: HttpRequest, name: str) -> HttpResponse:
    parsed = parse_url_reference(name)
    if parsed.tag or parsed.digest:
        raise BadRequest("Bulk delete works on a repository: /r/NAME/-/bulk-delete.")
    repository = get_repository_or_404(request.user, parsed.name, Level.DELETE)
    if request.method == "POST":
        expected = confirmed_items(request.POST.getlist("confirm"))
        execution = bulk_delete_tags(repository, expected, _actor(request, bulk=True))
        return _result(request, execution, title=f"Delete tags of {repository.name}")
    if request.GET.get("all"):
        tags = all_matching(request, repository)
    else:
        tags = selected_tags(request.GET.getlist("tag"))
    if not tags:
        # Nothing ticked: back to the tag table, which says so next to the button.
        return redirect(f"{repository.get_absolute_url()}?{NOTHING_SELECTED}#bulk-delete")
    plan = build_plan(repository, tags)
    return render(
        request,
        "cleanup/bulk_delete.html",
        {"repository": repository, "plan": plan, "confirm_url": request.path},
    )


def all_matching(request: HttpRequest, repository) -> list[str]:
    """ "Select all N matching" (``?all=1&q=…``): every tag the repository page's filter
    matches, not just the page's, up to the bulk limit."""
    text = clean_filter(request.GET.get("q"))
    names = matching_names(request.user, repository, text, MAX_BULK_TAGS)
    if not names:
        raise BadRequest("No tag matches: there is nothing to delete.")
    if len(names) > MAX_BULK_TAGS:
        raise BadRequest(
            f"More than {MAX_BULK_TAGS} tags match: narrow the filter, or use a retention "
            "policy for more."
        )
    return names


def _result(request: HttpRequest, execution: Execution, *, title: str) -> HttpResponse:
    """Post/redirect/get: the outcome is stored, and its page is a GET a reload cannot repeat."""
    return redirect(results.store_execution(request, execution, title=title))


@member_required
@require_safe
def result_view(request: HttpRequest, pk) -> HttpResponse:
    template, context, status = results.page(request.user, pk)
    return render(request, template, context, status=status)


# -- retag / move a tag ---------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def retag_view(request: HttpRequest, reference: str) -> HttpResponse:
    resolved = resolve(request.user, reference, Level.PUSH)
    if resolved.manifest is None:
        raise BadRequest("Name the image to tag: /r/NAME:TAG/-/retag or /r/NAME@DIGEST/-/retag.")
    repository, manifest = resolved.repository, resolved.manifest
    context = {"repository": repository, "manifest": manifest, "source": str(resolved.reference)}
    if request.method == "GET":
        form = RetagForm(initial={"new_tag": request.GET.get("tag", "")})
        return render(request, "cleanup/retag.html", {**context, "form": form})
    form = RetagForm(request.POST)
    if not form.is_valid():
        return render(request, "cleanup/retag.html", {**context, "form": form}, status=400)
    new_tag = form.cleaned_data["new_tag"]
    confirmed_old = form.cleaned_data["confirmed_old"]
    result = retag(
        repository,
        manifest,
        new_tag,
        _actor(request),
        source=str(resolved.reference),
        confirmed_old=confirmed_old,
    )
    if result.status == RetagStatus.CONFIRM:
        move_form = RetagForm(initial={"new_tag": new_tag, "confirmed_old": result.old_digest})
        return render(
            request,
            "cleanup/retag_move.html",
            {
                **context,
                "form": move_form,
                "new_tag": new_tag,
                "result": result,
                "old_digest": result.old_digest,
                "old_left_untagged": left_untagged(repository, result.old_digest, new_tag),
                "sides": move_sides(repository, new_tag, result.old_digest, manifest),
            },
            status=409 if confirmed_old else 200,
        )
    return redirect(
        results.store_retag(
            request, repository, manifest.digest, new_tag, result, source=str(resolved.reference)
        )
    )


# -- putting back an image that lost its tag to a racing delete -----------------------------


@member_required
@require_POST
def restore_view(request: HttpRequest, reference: str) -> HttpResponse:
    """``POST /r/<repo>@<digest>/-/restore`` with ``tag``: the button of a delete's result
    page when a push raced the delete and could not be put back automatically."""
    parsed = parse_url_reference(reference)
    if not parsed.digest or parsed.tag:
        raise BadRequest("Name the image to put back: /r/NAME@DIGEST/-/restore.")
    repository = get_repository_or_404(request.user, parsed.name, Level.PUSH)
    tag = request.POST.get("tag", "")
    if not is_valid_tag(tag):
        raise BadRequest("Name a valid tag to put the image back on.")
    if not offered(repository, tag, parsed.digest):
        return problem(
            request,
            "Nothing to put back",
            f"No delete of {repository.name}:{tag} offered to put {short_digest(parsed.digest)} "
            "back on it: nothing was changed. Use “Add or move a tag” instead.",
            status=409,
            repository=repository,
        )
    result = restore(repository, tag, parsed.digest, _actor(request))
    return redirect(results.store_retag(request, repository, parsed.digest, tag, result))


# -- retention ------------------------------------------------------------------------------


@member_required
def retention_list(request: HttpRequest) -> HttpResponse:
    deletable = retention.deletable_repositories(request.user)
    policies = retention.visible_policies(request.user, deletable)
    return render(request, "cleanup/retention_list.html", {"policies": policies})


def _may_switch(request: HttpRequest, policy: RetentionPolicy) -> bool:
    """Who may switch a policy on or off: whoever may change policies in the admin and may
    delete wherever its pattern could reach (``covers`` is sound: never a wrong yes)."""
    user = request.user
    if user.is_superuser:
        return True
    if not user.has_perm("cleanup.change_retentionpolicy"):
        return False
    return any(
        covers(outer, policy.repository_pattern)
        for outer in access_for(user).patterns_at(Level.DELETE)
    )


@member_required
def retention_preview(request: HttpRequest, pk: int) -> HttpResponse:
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    return render(
        request,
        "cleanup/retention_preview.html",
        {"policy": policy, "preview": planned, "may_switch": _may_switch(request, policy)},
    )


@member_required
@require_http_methods(["GET", "POST"])
def retention_enable(request: HttpRequest, pk: int) -> HttpResponse:
    """Switching a policy on: its dry run first; only the POST of that page switches it on,
    and only while the dry run is still what was shown (the preview's fingerprint)."""
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    if not _may_switch(request, policy):
        raise PermissionDenied("Switching a policy on needs the right to change policies.")
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    context = {"policy": policy, "preview": planned}
    if policy.enabled:
        messages.info(request, f"{policy.name} is already switched on.")
        return redirect(policy.get_absolute_url())
    if request.method == "POST":
        if request.POST.get("fingerprint") != planned.fingerprint:
            context["notice"] = (
                "The tags changed since this dry run was shown; the policy is still off. "
                "Here is the new dry run: check it and switch on again."
            )
            return render(request, "cleanup/retention_enable.html", context, status=409)
        RetentionPolicy.objects.filter(pk=policy.pk).update(enabled=True)
        _actor(request).record(
            AuditEntry.Action.RETENTION_ENABLED,
            reference=policy.name,
            details={
                "policy": policy.pk,
                "pattern": policy.repository_pattern,
                "previewed_tags": planned.tag_count,
                "fingerprint": planned.fingerprint,
            },
        )
        messages.success(
            request, f"{policy.name} is switched on: scheduled runs apply it from now on."
        )
        return redirect(policy.get_absolute_url())
    return render(request, "cleanup/retention_enable.html", context)


@member_required
@require_POST
def retention_disable(request: HttpRequest, pk: int) -> HttpResponse:
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    if not _may_switch(request, policy):
        raise PermissionDenied("Switching a policy off needs the right to change policies.")
    if policy.enabled:
        RetentionPolicy.objects.filter(pk=policy.pk).update(enabled=False)
        _actor(request).record(
            AuditEntry.Action.RETENTION_DISABLED,
            reference=policy.name,
            details={"policy": policy.pk, "pattern": policy.repository_pattern},
        )
    messages.success(request, f"{policy.name} is switched off: scheduled runs skip it.")
    return redirect(policy.get_absolute_url())


@member_required
@require_POST
def retention_apply(request: HttpRequest, pk: int) -> HttpResponse:
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    context = {"policy": policy, "preview": planned}
    notice = retention.refusal(policy, planned, request.POST.get("fingerprint"))
    if notice:
        context["notice"] = notice
        if not policy.enabled:
            context["may_switch"] = _may_switch(request, policy)
        return render(request, "cleanup/retention_preview.html", context, status=409)
    result = retention.apply(policy, planned, _actor(request))
    return redirect(results.store_retention(request, result))
