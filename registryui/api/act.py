"""Actions: delete a tag, delete an image, put back a tag a racing delete took, add or move
tags, bulk delete, retention.

Each goes through ``browse.lookup.resolve`` and the resolver first (hidden → 404, not
allowed → 403, nothing sent to the registry), then calls the code the pages call
(``cleanup.actions``, ``cleanup.restore``, ``cleanup.retag``, ``cleanup.retention``), which
re-checks the registry, acts, mirrors the database and writes the audit log (``via="api"``).
Outcomes the pages show with a 409 or 502 are problem documents here with the same status and
the execution attached. A delete names the digest the caller saw (``?digest=`` for a tag,
``NAME@DIGEST`` for an image): the registry must still hold that, or nothing is deleted.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from registryui.browse.lookup import Resolved, parse_url_reference, resolve
from registryui.cleanup import retention
from registryui.cleanup.actions import bulk_delete, delete_tags, held_by_index
from registryui.cleanup.outcomes import Actor, Execution, RetagStatus
from registryui.cleanup.plan import build_plan
from registryui.cleanup.restore import offered, restore
from registryui.cleanup.retag import retag
from registryui.lib.reference import is_valid_tag, short_digest
from registryui.teams.models import Level
from registryui.teams.permissions import get_repository_or_404

from . import schemas as s
from .problems import Code, Problem
from .read import resolve_repository

router = Router()

#: Problem documents an action may answer with besides 200.
ACTION_ERRORS = {400: s.ProblemOut, 403: s.ProblemOut, 404: s.ProblemOut, 409: s.ProblemOut}


def actor(request: HttpRequest, **extra) -> Actor:
    """The audit log's actor: the user (or robot), marked as coming through the API."""
    return Actor(request=request, user=request.user, via="api", extra=extra)


def execution_out(execution: Execution, user) -> dict:
    """An execution as the API answers it; freed bytes as ``user`` may see them (an upper
    bound for who cannot see every repository, as on the pages)."""
    return {
        "repository": execution.repository.name,
        "ok": execution.ok,
        "deleted_tags": execution.deleted_tags,
        "gone_tags": execution.gone_tags,
        "deleted_digests": execution.deleted_digests,
        "freed_bytes": execution.freed.as_seen_by(user).bytes,
        "error": execution.error,
        "outcomes": [
            {
                "kind": o.kind,
                "reference": o.reference,
                "digest": o.digest,
                "result": o.result.value,
                "message": o.message,
                "tags": list(o.tags),
                "restore": o.details.get("restore") or None,
            }
            for o in execution.outcomes
        ],
    }


def finished(execution: Execution, what: str, user) -> dict:
    """The execution as the answer: 200, or the page's 409/502 as a problem document."""
    status = execution.status_code
    if status == 200:
        return execution_out(execution, user)
    if execution.error_code == "UNSUPPORTED":
        code = Code.DELETES_DISABLED
    elif status == 409:
        code = Code.CHANGED
    else:
        code = Code.REGISTRY_FAILED
    detail = execution.error or next(
        (o.message for o in execution.outcomes if not o.result.settled), f"{what} did not finish."
    )
    raise Problem(status, code, detail, execution=execution_out(execution, user))


def _image(request: HttpRequest, reference: str, action: int) -> Resolved:
    resolved = resolve(request.user, reference, action)
    if resolved.manifest is None:
        raise Problem(
            400,
            Code.INVALID_FIELD,
            "Name an image: NAME:TAG or NAME@DIGEST.",
            errors=[{"field": "path.reference", "message": "NAME:TAG or NAME@DIGEST."}],
        )
    return resolved


def _digest_error(field: str) -> Problem:
    return Problem(
        400,
        Code.INVALID_FIELD,
        "That is not a digest (sha256: and 64 hexadecimal digits).",
        errors=[{"field": field, "message": "sha256: and 64 hexadecimal digits."}],
    )


# -- delete a tag, delete an image ----------------------------------------------------------


@router.delete(
    "/tags/{path:reference}",
    response={200: s.ExecutionOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["actions"],
)
def delete_tag(
    request: HttpRequest,
    reference: str,
    digest: str = Query(
        ...,
        pattern=s.DIGEST_PATTERN,
        description="The digest you saw the tag at (required).",
        examples=[s.DIGEST_EXAMPLE],
    ),
):
    """Delete one tag (``NAME:TAG``) that points at ``digest``; other tags on its image stay.

    ``digest`` is the digest you read the tag at. Right before deleting, the registry is asked
    where the tag points: anywhere else (pushed again since) and nothing is deleted, 409
    ``changed``. Without ``digest``: 400 ``digest_required``."""
    resolved = resolve(request.user, reference, Level.DELETE)
    if resolved.tag is None:
        raise Problem(
            400,
            Code.INVALID_FIELD,
            "Name the tag to delete: NAME:TAG.",
            errors=[{"field": "path.reference", "message": "NAME:TAG."}],
        )
    execution = delete_tags(resolved.repository, {resolved.tag.name: digest}, actor(request))
    return finished(
        execution, f"Deleting {resolved.repository.name}:{resolved.tag.name}", request.user
    )


@router.delete(
    "/images/{path:reference}",
    response={200: s.ExecutionOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["actions"],
)
def delete_image(request: HttpRequest, reference: str):
    """Delete an image (``NAME@DIGEST``, the digest you saw) and every tag of the repository on
    it. Each tag is checked with the registry first (one that moved is left alone), and if the
    registry has a tag on the image that was not there when you looked, nothing is deleted
    (409 ``changed``). A platform image of a tagged index is refused (409
    ``platform_image``). ``NAME:TAG`` is refused (400 ``digest_required``): the image a tag
    names changes with each push."""
    resolved = resolve(request.user, reference, Level.DELETE)
    if not resolved.reference.digest:
        raise Problem(
            400,
            Code.DIGEST_REQUIRED,
            "Name the image by the digest you saw: NAME@DIGEST. A tag can be pushed again "
            "meanwhile, and the image deleted would then be one nobody chose.",
            errors=[{"field": "path.reference", "message": "NAME@DIGEST."}],
        )
    repository, manifest = resolved.repository, resolved.manifest
    assert manifest is not None
    held = held_by_index(repository, manifest.digest)
    if held is not None:
        held.refuse(actor(request))
        raise Problem(
            409,
            Code.PLATFORM_IMAGE,
            held.message,
            held_by={index: tags for index, tags in held.holders},
        )
    tags = repository.tags.filter(manifest=manifest).values_list("name", flat=True)
    expected = dict.fromkeys(tags, manifest.digest)
    if not expected:
        raise Problem(404, Code.NOT_FOUND, f"{short_digest(manifest.digest)} has no tag here.")
    execution = delete_tags(repository, expected, actor(request), mode="image")
    return finished(
        execution, f"Deleting {repository.name}@{short_digest(manifest.digest)}", request.user
    )


# -- putting back an image that lost its tag to a racing delete -----------------------------


@router.post(
    "/manifests/{path:reference}/-/restore",
    response={200: s.RestoreOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["actions"],
)
def restore_tag(request: HttpRequest, reference: str, payload: s.RestoreIn):
    """Put the image ``NAME@DIGEST`` back on ``tag``, as the result page's "Put it back"
    button does: only where a delete offered it (an outcome's ``restore``: a push landed on
    the tag while it was being deleted and could not be put back), else 409
    ``nothing_to_restore``; only while the tag has no other image, else 409 ``changed``."""
    parsed = parse_url_reference(reference)
    if not parsed.digest:
        raise Problem(
            400,
            Code.INVALID_FIELD,
            "Name the image to put back: NAME@DIGEST.",
            errors=[{"field": "path.reference", "message": "NAME@DIGEST."}],
        )
    repository = get_repository_or_404(request.user, parsed.name, Level.PUSH)
    tag, digest = payload.tag, parsed.digest
    if not is_valid_tag(tag):
        raise Problem(
            400,
            Code.INVALID_FIELD,
            f"{tag!r} is not a valid tag.",
            errors=[{"field": "body.tag", "message": "Not a valid tag."}],
        )
    if not offered(repository, tag, digest):
        raise Problem(
            409,
            Code.NOTHING_TO_RESTORE,
            f"No delete of {repository.name}:{tag} offered to put {short_digest(digest)} back "
            "on it: nothing was changed. To point a tag at an image, POST "
            "/manifests/NAME@DIGEST/-/tags.",
        )
    result = restore(repository, tag, digest, actor(request))
    # A problem document keeps its own "status" (the HTTP one): the result's is in its code.
    where = {"repository": repository.name, "tag": tag, "digest": digest}
    where["now_digest"] = result.old_digest or None
    if result.status == RetagStatus.CONFIRM:
        raise Problem(409, Code.CHANGED, result.message, **where)
    if result.failed:
        raise Problem(502, Code.REGISTRY_FAILED, result.message, **where)
    return {**where, "status": result.status.value, "message": result.message}


# -- bulk delete ----------------------------------------------------------------------------


def plan_out(plan, user) -> dict:
    return {
        "repository": plan.repository.name,
        "images": [
            {"digest": i.digest, "tags": list(i.tags), "children": i.child_digests}
            for i in plan.images
        ],
        "tags": [
            {"tag": r.tag, "digest": r.digest, "siblings": r.siblings} for r in plan.tag_removals
        ],
        "missing": plan.missing,
        "freed_bytes": plan.freed.as_seen_by(user).bytes,
    }


@router.post(
    "/repositories/{path:name}/-/bulk-delete",
    response={200: s.ExecutionOut | s.PlanOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["actions"],
)
def bulk_delete_tags(request: HttpRequest, name: str, payload: s.BulkDeleteIn):
    """Delete several tags, each confirmed with the digest it was seen at (a tag pushed
    again since is left alone). ``dry_run`` answers the plan: which images go with all
    their tags, which tags go alone, the bytes garbage-collect would reclaim."""
    repository = resolve_repository(request, name, Level.DELETE)
    expected: dict[str, str] = {}
    for index, item in enumerate(payload.tags):
        if not is_valid_tag(item.tag):
            raise Problem(
                400,
                Code.INVALID_FIELD,
                f"{item.tag!r} is not a valid tag.",
                errors=[{"field": f"body.tags.{index}.tag", "message": "Not a valid tag."}],
            )
        expected[item.tag] = item.digest
    if payload.dry_run:
        plan = build_plan(repository, list(expected))
        return plan_out(plan, request.user)
    execution = bulk_delete(repository, expected, actor(request, bulk=True))
    return finished(execution, f"Deleting tags of {repository.name}", request.user)


# -- add and move tags ----------------------------------------------------------------------


@router.post(
    "/manifests/{path:reference}/-/tags",
    response={200: s.TagsOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["actions"],
)
def add_tags(request: HttpRequest, reference: str, payload: s.TagsIn):
    """Point tags at this image (``NAME:TAG`` or ``NAME@DIGEST``). A tag that exists and
    points elsewhere moves only when ``old_digests`` names the digest it points at now;
    otherwise nothing is written for it and the answer is 409 ``confirmation_needed`` with
    ``current_digests`` (tag → digest) to confirm."""
    resolved = _image(request, reference, Level.PUSH)
    repository, manifest = resolved.repository, resolved.manifest
    assert manifest is not None
    for index, tag in enumerate(payload.tags):
        if not is_valid_tag(tag):
            raise Problem(
                400,
                Code.INVALID_FIELD,
                f"{tag!r} is not a valid tag.",
                errors=[{"field": f"body.tags.{index}", "message": "Not a valid tag."}],
            )
    for tag, old in payload.old_digests.items():
        if not s.DIGEST_RE.match(old):
            raise _digest_error(f"body.old_digests.{tag}")
    results = []
    source = str(resolved.reference)
    for tag in dict.fromkeys(payload.tags):
        result = retag(
            repository,
            manifest,
            tag,
            actor(request),
            source=source,
            confirmed_old=payload.old_digests.get(tag, ""),
        )
        results.append(
            {
                "tag": tag,
                "status": result.status.value,
                "message": result.message,
                "old_digest": result.old_digest or None,
            }
        )
    out = {"repository": repository.name, "digest": manifest.digest, "results": results}
    confirm = {r["tag"]: r["old_digest"] for r in results if r["status"] == RetagStatus.CONFIRM}
    if confirm:
        raise Problem(
            409,
            Code.CONFIRMATION_NEEDED,
            "These tags point at another image: send the digest each points at now in "
            f"old_digests to move them: {', '.join(confirm)}. The other tags were written.",
            current_digests=confirm,
            **out,
        )
    if any(r["status"] == RetagStatus.FAILED for r in results):
        raise Problem(502, Code.REGISTRY_FAILED, "The registry failed to write some tags.", **out)
    return out


# -- retention ------------------------------------------------------------------------------


def policy_out(policy, count: int) -> dict:
    return {
        "id": policy.pk,
        "name": policy.name,
        "description": policy.description,
        "repository_pattern": policy.repository_pattern,
        "keep_last": policy.keep_last,
        "older_than_days": policy.older_than_days,
        "keep_regex": policy.keep_regex,
        "enabled": policy.enabled,
        "matching_repositories": count,
        "last_applied_at": policy.last_applied_at,
    }


def preview_out(request: HttpRequest, policy, planned, deletable) -> dict:
    count = retention.matching_repositories(policy, deletable).count()
    return {
        "policy": policy_out(policy, count),
        "fingerprint": planned.fingerprint,
        "tag_count": planned.tag_count,
        "image_count": planned.image_count,
        "unknown_age_count": planned.unknown_age_count,
        "freed_bytes": planned.freed.as_seen_by(request.user).bytes,
        "repositories": [
            {
                "repository": item.repository.name,
                "verdicts": [
                    {
                        "tag": v.tag,
                        "digest": v.digest,
                        "delete": v.delete,
                        "reasons": v.reasons,
                        "since": v.since,
                    }
                    for v in item.verdicts
                ],
            }
            for item in planned.repositories
        ],
    }


@router.get("/retention/policies", response=list[s.PolicyOut], tags=["retention"])
def list_policies(request: HttpRequest):
    """The retention policies that match repositories you may delete in."""
    deletable = retention.deletable_repositories(request.user)
    return [policy_out(p, n) for p, n in retention.visible_policies(request.user, deletable)]


@router.get("/retention/policies/{int:pk}/preview", response=s.PreviewOut, tags=["retention"])
def preview_policy(request: HttpRequest, pk: int):
    """The dry run over the repositories you may delete in: every tag, kept or not, and why."""
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    return preview_out(request, policy, planned, deletable)


@router.post(
    "/retention/policies/{int:pk}/apply",
    response={200: s.ApplyOut, **ACTION_ERRORS, 502: s.ProblemOut},
    tags=["retention"],
)
def apply_policy(request: HttpRequest, pk: int, payload: s.ApplyIn):
    """Apply the preview whose ``fingerprint`` you pass: if the list changed since (or the
    policy is off), nothing is deleted and the answer is 409 with the new preview."""
    deletable = retention.deletable_repositories(request.user)
    policy = retention.visible_policy(request.user, pk, deletable)
    planned = retention.preview(policy, retention.matching_repositories(policy, deletable))
    notice = retention.refusal(policy, planned, payload.fingerprint)
    if notice:
        raise Problem(
            409,
            Code.POLICY_DISABLED if not policy.enabled else Code.PREVIEW_CHANGED,
            notice,
            preview=preview_out(request, policy, planned, deletable),
        )
    result = retention.apply(policy, planned, actor(request))
    out = {
        "policy": policy.name,
        "deleted_tags": result.deleted_tags,
        "freed_bytes": result.freed.as_seen_by(request.user).bytes,
        "failures": result.failures,
        "interrupted": result.interrupted,
        "summary": result.summary,
        "executions": [execution_out(e, request.user) for e in result.executions],
    }
    if result.failures:
        raise Problem(502, Code.REGISTRY_FAILED, result.summary, **out)
    return out
