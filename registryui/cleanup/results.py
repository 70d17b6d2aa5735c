"""Result pages after a cleanup POST: the outcome stored, then shown by a GET.

A POST acts, stores what the result page needs (``ActionResult``) and redirects to
``/results/<id>/``; reloading that page shows the same outcome and never acts again. What is
stored is what the acting user was shown: the bytes freed as they may see them
(``Freed.as_seen_by``), the outcomes of their own action.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import Http404
from django.utils import timezone

from registryui.catalog.models import Repository
from registryui.teams.models import Level
from registryui.teams.permissions import can

from .freed import Freed
from .models import ActionResult, RetentionPolicy
from .outcomes import Execution, Outcome, Result, RetagStatus
from .retag import RetagResult
from .retention import RunResult

_FREED_FIELDS = ("bytes", "blobs", "shared_blobs", "shared_bytes", "unknown_manifests", "bound")


def _freed_data(freed: Freed) -> dict[str, Any]:
    return {name: getattr(freed, name) for name in _FREED_FIELDS}


def _freed(data: dict[str, Any] | None) -> Freed:
    # Without ``deletions``, ``as_seen_by`` returns it as stored: the figure the user saw.
    return Freed(**{name: value for name, value in (data or {}).items() if name in _FREED_FIELDS})


def _execution_data(execution: Execution, user, *, freed: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "repository": execution.repository.name,
        "error": execution.error,
        "error_code": execution.error_code,
        "outcomes": [
            {
                "kind": o.kind,
                "reference": o.reference,
                "digest": o.digest,
                "result": o.result.value,
                "message": o.message,
                "tags": list(o.tags),
                "details": o.details,
            }
            for o in execution.outcomes
        ],
    }
    if freed:
        data["freed"] = _freed_data(execution.freed.as_seen_by(user))
    return data


def _repository(name: str) -> Repository:
    """The repository row, or an unsaved one with the name (its tags may all be gone)."""
    return Repository.objects.filter(name=name).first() or Repository(name=name)


def _execution(data: dict[str, Any]) -> Execution:
    execution = Execution(
        repository=_repository(data["repository"]),
        outcomes=[
            Outcome(
                kind=o["kind"],
                reference=o["reference"],
                digest=o["digest"],
                result=Result(o["result"]),
                message=o["message"],
                tags=o["tags"],
                details=o["details"],
            )
            for o in data["outcomes"]
        ],
        error=data["error"],
        error_code=data["error_code"],
    )
    execution.__dict__["freed"] = _freed(data.get("freed"))  # the cached_property, as stored
    return execution


def _store(request, kind, *, repository: str, title: str, status: int, payload) -> ActionResult:
    now = timezone.now()
    ActionResult.objects.filter(
        created_at__lt=now - timedelta(days=ActionResult.KEEP_DAYS)
    ).delete()
    return ActionResult.objects.create(
        user=request.user,
        created_at=now,
        kind=kind,
        repository=repository,
        title=title,
        status=status,
        payload=payload,
    )


def store_execution(request, execution: Execution, *, title: str) -> ActionResult:
    return _store(
        request,
        ActionResult.Kind.DELETION,
        repository=execution.repository.name,
        title=title,
        status=execution.status_code,
        payload={"execution": _execution_data(execution, request.user)},
    )


def store_retag(
    request, repository: Repository, digest: str, new_tag: str, result: RetagResult, *, source=""
) -> ActionResult:
    return _store(
        request,
        ActionResult.Kind.RETAG,
        repository=repository.name,
        title=f"Tag {new_tag}",
        status=result.http_status,
        payload={
            "digest": digest,
            "new_tag": new_tag,
            "source": source,
            "status": result.status.value,
            "message": result.message,
            "old_digest": result.old_digest,
        },
    )


def store_retention(request, result: RunResult) -> ActionResult:
    policy = result.policy
    return _store(
        request,
        ActionResult.Kind.RETENTION,
        repository="",
        title=f"Applied {policy.name}",
        status=200 if not result.failures else 502,
        payload={
            "policy": policy.pk,
            "policy_name": policy.name,
            "interrupted": result.interrupted,
            "freed": _freed_data(result.freed.as_seen_by(request.user)),
            "executions": [
                _execution_data(e, request.user, freed=False) for e in result.executions
            ],
        },
    )


def page(user, pk) -> tuple[str, dict[str, Any], int]:
    """Template, context and status of a stored result: only its own user's, and only while
    the resolver still shows them its repository (hidden → 404, like every page)."""
    row = ActionResult.objects.filter(pk=pk, user=user).first()
    if row is None:
        raise Http404("No such result: results are shown only to who acted, for 30 days.")
    if row.repository and not can(user, Level.VIEW, row.repository):
        raise Http404("No such result.")
    data = row.payload
    context: dict[str, Any] = {"title": row.title, "stored": row}
    if row.kind == ActionResult.Kind.DELETION:
        execution = _execution(data["execution"])
        context.update(execution=execution, repository=execution.repository)
        return "cleanup/result.html", context, row.status
    if row.kind == ActionResult.Kind.RETAG:
        context.update(
            repository=_repository(row.repository),
            manifest={"digest": data["digest"]},
            new_tag=data["new_tag"],
            source=data["source"],
            result=RetagResult(RetagStatus(data["status"]), data["message"], data["old_digest"]),
        )
        return "cleanup/retag_done.html", context, row.status
    policy = RetentionPolicy.objects.filter(pk=data["policy"]).first() or RetentionPolicy(
        pk=data["policy"], name=data["policy_name"]
    )
    executions = [
        _execution(e) for e in data["executions"] if can(user, Level.VIEW, e["repository"])
    ]
    result = RunResult(
        policy=policy,
        executions=executions,
        freed=_freed(data["freed"]),
        interrupted=data["interrupted"],
    )
    context.update(policy=policy, result=result)
    return "cleanup/retention_result.html", context, row.status
