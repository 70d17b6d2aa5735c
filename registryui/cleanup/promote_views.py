"""Add several tags to an image, and copy an image to another repository (issue 14).

``/r/<ref>/-/add-tags``: GET the form, POST the names; ``/r/<ref>/-/copy``: GET the form,
GET with ``to`` (and ``tag``) the confirmation, POST the copy. Both POSTs redirect to the
same URL with ``?result=<id>`` (post/redirect/get); the result is kept in the session, so a
reload shows it again and never repeats the action. Access: the resolver before anything
reaches the registry (404 hidden, 403 not allowed): push on the image's repository for
"add tags"; view on the source and push on the target for a copy.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from registryui.browse.lookup import Resolved, resolve
from registryui.catalog.models import Tag
from registryui.lib.reference import (
    is_valid_digest,
    is_valid_name,
    is_valid_tag,
    reference_url,
)
from registryui.teams.decorators import member_required
from registryui.teams.models import Level
from registryui.teams.permissions import check, repositories_for

from .add_tags import MAX_NEW_TAGS, AddStatus, TagReport, add_tags, parse_names
from .copy import CopyResult, CopyStatus, copy_image
from .outcomes import Actor

#: Results kept in a session (the newest ones): enough for a few tabs.
KEPT_RESULTS = 10
_RESULTS_KEY = "registryui.action_results"


def _remember(request: HttpRequest, kind: str, payload: dict[str, Any]) -> str:
    key = uuid.uuid4().hex[:16]
    results = dict(request.session.get(_RESULTS_KEY, {}))
    results[key] = {"kind": kind, **payload}
    while len(results) > KEPT_RESULTS:
        results.pop(next(iter(results)))
    request.session[_RESULTS_KEY] = results
    return key


def _recall(request: HttpRequest, kind: str, key: str) -> dict[str, Any]:
    found = request.session.get(_RESULTS_KEY, {}).get(key)
    if not isinstance(found, dict) or found.get("kind") != kind:
        raise Http404("This result is no longer available: results are kept for a while only.")
    return found


def _actor(request: HttpRequest) -> Actor:
    return Actor(request=request, user=request.user, via="ui")


def _image(resolved: Resolved, action: str) -> None:
    if resolved.manifest is None:
        raise BadRequest(f"Name the image: /r/NAME:TAG/-/{action} or /r/NAME@DIGEST/-/{action}.")


def _confirmed(values: list[str]) -> dict[str, str]:
    """``tag@old-digest`` pairs of a move confirmation → {tag: old digest}."""
    confirmed = {}
    for value in values:
        tag, at, digest = value.strip().rpartition("@")
        if not at or not is_valid_tag(tag) or not is_valid_digest(digest):
            raise BadRequest(f"{value[:300]!r} is not a confirmed move (tag@digest).")
        confirmed[tag] = digest
    return confirmed


# -- add tags -------------------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def add_tags_view(request: HttpRequest, reference: str) -> HttpResponse:
    resolved = resolve(request.user, reference, Level.PUSH)
    _image(resolved, "add-tags")
    repository, manifest = resolved.repository, resolved.manifest
    source = str(resolved.reference)
    context: dict[str, Any] = {
        "repository": repository,
        "manifest": manifest,
        "source": source,
        "max_tags": MAX_NEW_TAGS,
        "current": sorted(
            Tag.objects.filter(repository=repository, manifest=manifest).values_list(
                "sort_key", "name"
            )
        ),
    }
    if request.method == "POST":
        text = request.POST.get("tags", "")
        requested = parse_names(text)
        if not requested.tags and not requested.refused:
            context["error"] = "Type at least one tag."
            return render(request, "cleanup/add_tags.html", context, status=400)
        confirmed = _confirmed(request.POST.getlist("confirm"))
        reports = requested.refused + add_tags(
            repository,
            manifest,
            requested.tags,
            _actor(request),
            source=source,
            confirmed=confirmed,
        )
        key = _remember(
            request,
            "add-tags",
            {"source": source, "reports": [r.as_dict() for r in reports]},
        )
        return redirect(f"{request.path}?result={key}")
    key = request.GET.get("result")
    if key:
        stored = _recall(request, "add-tags", key)
        if stored.get("source") != source:
            raise Http404("This result is for another image.")
        reports = [TagReport.from_dict(r) for r in stored.get("reports", [])]
        context["reports"] = reports
        context["to_confirm"] = [r for r in reports if r.status == AddStatus.CONFIRM]
        context["any_failed"] = any(
            r.status in (AddStatus.FAILED, AddStatus.REFUSED) for r in reports
        )
        return render(request, "cleanup/add_tags_result.html", context)
    context["initial"] = request.GET.get("tags", "")[:2000]
    return render(request, "cleanup/add_tags.html", context)


# -- copy to repository ---------------------------------------------------------------------


def _target(request: HttpRequest, data, default_tag: str) -> tuple[str, str, list[str]]:
    """The target repository and tag from the form, with what is wrong with them."""
    name = (data.get("to") or "").strip().lower()[:300]
    tag = (data.get("tag") or default_tag).strip()[:200]
    errors = []
    if not is_valid_name(name):
        errors.append(
            "The repository is a name such as team-a/api: lowercase letters, digits and "
            "separators (. _ -), parts joined by /."
        )
    if not is_valid_tag(tag):
        errors.append("The tag is 1 to 128 letters, digits, _ . or -, not starting with . or -.")
    return name, tag, errors


@member_required
@require_http_methods(["GET", "POST"])
def copy_view(request: HttpRequest, reference: str) -> HttpResponse:
    resolved = resolve(request.user, reference, Level.VIEW)
    _image(resolved, "copy")
    repository, manifest = resolved.repository, resolved.manifest
    source = str(resolved.reference)
    default_tag = resolved.reference.tag or ""
    context: dict[str, Any] = {
        "repository": repository,
        "manifest": manifest,
        "source": source,
        "pushable": list(
            repositories_for(request.user, Level.PUSH)
            .order_by("name")
            .values_list("name", flat=True)[:200]
        ),
        "to": "",
        "tag": default_tag,
    }
    if request.method == "POST":
        name, tag, errors = _target(request, request.POST, default_tag)
        if errors:
            return render(request, "cleanup/copy.html", {**context, "errors": errors}, status=400)
        check(request.user, Level.PUSH, name)
        confirmed_old = (request.POST.get("confirmed_old") or "").strip()
        if confirmed_old and not is_valid_digest(confirmed_old):
            raise BadRequest("The confirmed digest is not a digest.")
        result = copy_image(
            repository,
            manifest,
            name,
            tag,
            _actor(request),
            reference=source,
            confirmed_old=confirmed_old,
        )
        key = _remember(request, "copy", {"source": source, "result": result.as_dict()})
        return redirect(f"{request.path}?result={key}")
    key = request.GET.get("result")
    if key:
        stored = _recall(request, "copy", key)
        if stored.get("source") != source:
            raise Http404("This result is for another image.")
        result = CopyResult.from_dict(stored.get("result", {}))
        target_name, _, target_tag = result.target.rpartition(":")
        return render(
            request,
            "cleanup/copy_result.html",
            {
                **context,
                "result": result,
                "target_name": target_name,
                "target_tag": target_tag,
                "confirm": result.status == CopyStatus.CONFIRM,
            },
        )
    if "to" not in request.GET:
        return render(request, "cleanup/copy.html", context)
    name, tag, errors = _target(request, request.GET, default_tag)
    context.update(to=name, tag=tag)
    if request.GET.get("edit"):
        return render(request, "cleanup/copy.html", context)
    if errors:
        return render(request, "cleanup/copy.html", {**context, "errors": errors}, status=400)
    check(request.user, Level.PUSH, name)
    existing = (
        Tag.objects.filter(repository__name=name, name=tag).select_related("manifest").first()
    )
    children = []
    if manifest.is_index:
        children = list(manifest.child_links.select_related("child").order_by("position"))
    return render(
        request,
        "cleanup/copy_confirm.html",
        {
            **context,
            "existing": existing,
            "moves": existing is not None and existing.manifest_id != manifest.pk,
            "children": children,
            "target_url": reference_url(name, tag=tag),
        },
    )
