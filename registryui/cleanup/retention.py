"""Retention policies: the dry run (which tags go, which stay and why) and the real run.

Rules of safety, on top of the policy's own rules:

* a tag is never removed because it shares a digest with a tag that is deleted: retention
  deletes whole images, and only images none of whose tags is kept;
* a digest that any kept tag points at is never deleted, and neither is a platform image of a
  kept index. A tag on such an image is kept too ("kept by sharing"): deleting it would free
  nothing, and the image stays in any case.

So every deletion of a run is an image deletion whose bytes really come back after
garbage-collect. The real run carries out exactly the dry run's list, each image re-checked
against the registry first (see ``actions``); the UI applies only when the list it previewed
is still the list (same fingerprint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Max, QuerySet
from django.http import Http404
from django.utils import timezone

from registryui.catalog.artifacts import scheme_subject
from registryui.catalog.models import ApiReferrer, Repository
from registryui.core.models import AuditEntry
from registryui.events import activity
from registryui.events.models import ProcessedEvent
from registryui.lib.humanize import iec_size
from registryui.lib.reference import short_digest
from registryui.teams.models import Level
from registryui.teams.patterns import pattern_q
from registryui.teams.permissions import access_for, repositories_for

from .actions import delete_tags
from .freed import Freed, estimate_freed
from .models import RetentionPolicy
from .outcomes import Actor, Execution, Result
from .plan import DatabaseChildren, DatabaseReferrers, DeletionPlan, build_plan, closure

#: Times further ahead than this are a skewed clock (or an untrusted event time): unknown age.
CLOCK_SLACK = timedelta(minutes=5)


@dataclass
class Verdict:
    tag: str
    digest: str
    changed_at: datetime | None
    delete: bool
    reasons: list[str] = field(default_factory=list)
    #: The moment the tag's age is counted from (None: unknown; see ``known_since``).
    since: datetime | None = None
    #: The dates behind a verdict of the pull and push rules ("last pulled 2026-11-02", ...).
    evidence: list[str] = field(default_factory=list)
    #: When its image was last pulled in this repository (None: not since tracking started).
    last_pulled: datetime | None = None

    @property
    def short_digest(self) -> str:
        return short_digest(self.digest)


@dataclass
class RepositoryPreview:
    repository: Repository
    verdicts: list[Verdict]
    plan: DeletionPlan | None

    @property
    def to_delete(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.delete]

    @property
    def kept(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.delete]

    @property
    def expected(self) -> dict[str, str]:
        return {v.tag: v.digest for v in self.to_delete}

    @property
    def freed(self) -> Freed:
        return self.plan.freed if self.plan is not None else Freed()


@dataclass
class PolicyPreview:
    policy: RetentionPolicy
    repositories: list[RepositoryPreview]
    #: Counted once over all repositories: a blob shared by two deleted images comes back.
    freed: Freed
    now: datetime

    @property
    def with_deletions(self) -> list[RepositoryPreview]:
        return [r for r in self.repositories if r.to_delete]

    @property
    def tag_count(self) -> int:
        return sum(len(r.to_delete) for r in self.repositories)

    @property
    def unknown_age_count(self) -> int:
        """Tags kept because their age is unknown (only when the policy uses age)."""
        if not self.policy.uses_age:
            return 0
        return sum(1 for r in self.repositories for v in r.verdicts if v.since is None)

    @property
    def image_count(self) -> int:
        return sum(len(r.plan.images) for r in self.repositories if r.plan is not None)

    @property
    def fingerprint(self) -> str:
        """Identifies the exact list of deletions, so that apply does what was previewed."""
        lines = sorted(
            f"{r.repository.name}:{v.tag}@{v.digest}"
            for r in self.repositories
            for v in r.to_delete
        )
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def matching_repositories(policy: RetentionPolicy, queryset: QuerySet | None = None) -> QuerySet:
    queryset = Repository.objects.all() if queryset is None else queryset
    return queryset.filter(pattern_q(policy.repository_pattern)).order_by("name")


def deletable_repositories(user) -> QuerySet:
    """The repositories the user may delete in; 403 for someone who may delete nowhere."""
    if not access_for(user).patterns_at(Level.DELETE):
        raise PermissionDenied("Retention needs the delete permission on some repositories.")
    return repositories_for(user, Level.DELETE)


def visible_policies(user, deletable: QuerySet) -> list[tuple[RetentionPolicy, int]]:
    """The policies the user may see, each with how many of ``deletable`` it matches."""
    policies = []
    for policy in RetentionPolicy.objects.all():
        count = matching_repositories(policy, deletable).count()
        if count or user.is_superuser:
            policies.append((policy, count))
    return policies


def visible_policy(user, pk: int, deletable: QuerySet) -> RetentionPolicy:
    """A policy is shown to superusers, and to whoever may delete in a repository it matches:
    its pattern alone could name another team's namespace."""
    policy = RetentionPolicy.objects.filter(pk=pk).first()
    if policy is None or (
        not user.is_superuser and not matching_repositories(policy, deletable).exists()
    ):
        raise Http404("No such retention policy.")
    return policy


def refusal(policy: RetentionPolicy, planned: PolicyPreview, fingerprint: str | None) -> str:
    """Why applying ``planned`` now is refused ('' when it may go ahead): the policy is off,
    or the preview the user confirmed (its fingerprint) is no longer the list."""
    if not policy.enabled:
        return "This policy is switched off: switch it on (after its dry run) to apply it."
    if fingerprint != planned.fingerprint:
        return (
            "The tags changed since your preview; nothing was deleted. "
            "Here is the new preview: check it and apply again."
        )
    return ""


def known_since(
    first_seen: datetime | None,
    changed_at: datetime | None,
    last_push: datetime | None,
    now: datetime,
) -> datetime | None:
    """The moment a tag's age is counted from: the latest of when the UI first saw it, when it
    last moved, and when a push to it was last recorded. Never the image's build time (a first
    import sets ``changed_at`` to it, but ``first_seen`` is later). None when unknown: no
    ``first_seen``, or any of these times in the future."""
    if first_seen is None:
        return None
    times = [t for t in (first_seen, changed_at, last_push) if t is not None]
    if any(t > now + CLOCK_SLACK for t in times):
        return None
    return max(times)


def _last_pushes(repository: Repository) -> dict[str, datetime]:
    """The time the notification endpoint last recorded a push to each tag (this clock)."""
    return dict(
        ProcessedEvent.objects.filter(action="push", repository=repository.name)
        .exclude(tag="")
        .values("tag")
        .annotate(last=Max("received_at"))
        .values_list("tag", "last")
    )


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


@dataclass
class PullRules:
    """The pull and push rules of a policy over one repository (issue 16): each returns why it
    keeps a tag, or adds to ``evidence`` the dates that let it go."""

    policy: RetentionPolicy
    now: datetime
    pulls: dict[str, activity.ImagePulls]
    tracking_since: datetime | None
    #: Digests of the ``keep_pulled`` most recently pulled images.
    recent: set[str]

    @classmethod
    def over(
        cls, policy: RetentionPolicy, repository: Repository, now: datetime, images: set[str]
    ) -> PullRules:
        """``images``: the digests judged on their own; attachments (signatures, SBOMs), which
        verifying clients pull too, never take a place among the most recently pulled."""
        pulls = activity.by_image(repository.name) if policy.uses_pulls else {}
        ranked = sorted(
            (p.last_at, digest)
            for digest, p in pulls.items()
            if p.last_at is not None and digest in images
        )
        recent = {digest for _, digest in ranked[::-1][: policy.keep_pulled or 0]}
        since = activity.tracking_since() if policy.not_pulled_days is not None else None
        return cls(policy, now, pulls, since, recent)

    def keep(self, digest: str, pushed: datetime | None, exact: bool, evidence: list[str]):
        policy, reasons = self.policy, []
        last = self.pulls.get(digest, activity.NEVER).last_at
        if policy.keep_pulled and digest in self.recent:
            reasons.append(
                f"one of the {policy.keep_pulled} most recently pulled images "
                f"(last pulled {_day(last)})"  # type: ignore[arg-type]
            )
        if policy.not_pulled_days is not None:
            days = policy.not_pulled_days
            cutoff = self.now - timedelta(days=days)
            if last is not None and last > cutoff:
                reasons.append(f"pulled {_day(last)}, less than {days} days ago")
            elif self.tracking_since is None:
                reasons.append("pull tracking has not started: no pulls are known")
            elif self.tracking_since > cutoff:
                reasons.append(
                    f"pull tracking started {_day(self.tracking_since)}, less than {days} days ago"
                )
            elif last is not None:
                evidence.append(f"last pulled {_day(last)}")
            else:
                evidence.append(f"never pulled since {_day(self.tracking_since)}")
        if policy.pushed_before_days is not None:
            days = policy.pushed_before_days
            cutoff = self.now - timedelta(days=days)
            if pushed is None:
                reasons.append("push time unknown")
            elif pushed > cutoff:
                word = "pushed" if exact else "first seen"
                reasons.append(f"{word} {_day(pushed)}, less than {days} days ago")
            else:
                evidence.append(
                    f"pushed {_day(pushed)}" if exact else f"pushed before {_day(pushed)}"
                )
        return reasons


def judge(
    policy: RetentionPolicy, repository: Repository, now: datetime, *, api_referrers: bool = True
) -> RepositoryPreview:
    """The verdict on each tag of one repository, and the plan that carries it out.

    ``api_referrers=False``: no referrer of this registry came from the referrers API (the
    caller asked once for all repositories), so their rows are not read."""
    pushes = _last_pushes(repository) if policy.uses_age else {}
    rows, attached = [], []
    pushed: dict[str, tuple[datetime | None, bool]] = {}
    listed = list(
        repository.tags.values_list(
            "name",
            "manifest__digest",
            "changed_at",
            "first_seen",
            "manifest__subject_digest",
            "pushed_at",
        )
    )
    tagged = {row[1] for row in listed}
    subjects = {row[1]: row[4] for row in listed if row[4]}
    for name, digest, changed_at, first_seen, subject, pushed_at in listed:
        since = known_since(first_seen, changed_at, pushes.get(name), now)
        subject = scheme_subject(name) or subject
        if subject and subject in tagged and subject != digest:
            # A signature, SBOM or attestation follows its image, whatever its age: it is not
            # judged (or counted among the most recent) on its own.
            attached.append((name, digest, changed_at, since, subject))
            continue
        rows.append((name, digest, changed_at, since))
        # The push time, exact when a push event recorded it; else the latest moment it can
        # have happened (first seen, or a move the sync saw), from this server's clock.
        if pushed_at is not None and pushed_at <= now + CLOCK_SLACK:
            pushed[name] = (pushed_at, True)
        else:
            pushed[name] = (known_since(first_seen, changed_at, None, now), False)
    rules = PullRules.over(policy, repository, now, {row[1] for row in rows})
    # Newest first by the age retention counts, to the minute: the tags one sync imported
    # (stored within milliseconds of each other) then keep their order of last change (build
    # time, as the repository page shows), and a tag pushed later ranks above all of them.
    # A tag of unknown age ranks as the newest.
    newest = datetime.max.replace(tzinfo=now.tzinfo)
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda row: row[0])
    rows.sort(key=lambda row: row[2] or oldest, reverse=True)
    rows.sort(
        key=lambda row: row[3].replace(second=0, microsecond=0) if row[3] else newest,
        reverse=True,
    )
    cutoff = now - timedelta(days=policy.older_than_days) if policy.older_than_days else None
    verdicts: list[Verdict] = []
    rank = 0
    for name, digest, changed_at, since in rows:
        reasons: list[str] = []
        if policy.keeps_by_name(name):
            reasons.append(f"matches {policy.keep_regex}")
        if since is None and policy.uses_age:
            # Kept, and not counted among the most recent: it must not push a tag out of them.
            reasons.append("age unknown: no trustworthy time it was first seen")
        elif policy.uses_age:
            if rank < policy.keep_last:
                reasons.append(f"one of the {policy.keep_last} most recent tags")
            rank += 1
        if cutoff is not None and since is not None and since > cutoff:
            reasons.append(f"seen or changed less than {policy.older_than_days} days ago")
        evidence: list[str] = []
        reasons += rules.keep(digest, *pushed[name], evidence)
        verdicts.append(
            Verdict(
                name,
                digest,
                changed_at,
                delete=not reasons,
                reasons=reasons,
                since=since,
                evidence=evidence,
                last_pulled=rules.pulls.get(digest, activity.NEVER).last_at,
            )
        )

    children_of = DatabaseChildren({v.digest for v in verdicts})
    # Keep by sharing: a tag whose image stays anyway (a kept tag points at it, or a kept index
    # lists it) is kept too. One pass is enough: keeping such a tag adds nothing to what stays,
    # since its image (and so all it lists) is already in ``live``.
    live = closure({v.digest for v in verdicts if not v.delete}, children_of)
    for verdict in verdicts:
        if not verdict.delete or verdict.digest not in live:
            continue
        sharing = [v.tag for v in verdicts if not v.delete and v.digest == verdict.digest]
        if sharing:
            verdict.reasons.append(f"shares its image with kept tag {', '.join(sharing)}")
        else:
            holders = [
                v.tag
                for v in verdicts
                if not v.delete and verdict.digest in closure(children_of(v.digest), children_of)
            ]
            verdict.reasons.append(f"its image is a platform of kept index {', '.join(holders)}")
        verdict.delete = False
    for name, digest, changed_at, since, subject in sorted(attached):
        kept = subject in live
        reasons = [f"attached to kept image {short_digest(subject)}"] if kept else []
        verdicts.append(
            Verdict(name, digest, changed_at, delete=not kept, reasons=reasons, since=since)
        )
    going = [v.tag for v in verdicts if v.delete]
    plan = (
        build_plan(
            repository,
            going,
            tags={v.tag: v.digest for v in verdicts},
            children_of=children_of,
            referrers_of=DatabaseReferrers(
                repository,
                {v.tag: v.digest for v in verdicts},
                subjects=subjects,
                api=api_referrers,
            ),
        )
        if going
        else None
    )
    return RepositoryPreview(repository=repository, verdicts=verdicts, plan=plan)


def preview(
    policy: RetentionPolicy,
    repositories: Iterable[Repository] | None = None,
    *,
    now: datetime | None = None,
) -> PolicyPreview:
    """The dry run. ``repositories`` narrows it (to what a user may delete, for the UI)."""
    now = now or timezone.now()
    if repositories is None:
        repositories = matching_repositories(policy)
    api_referrers = ApiReferrer.objects.exists()
    results = [
        judge(policy, repository, now, api_referrers=api_referrers) for repository in repositories
    ]
    freed = estimate_freed(
        {r.repository.pk: r.plan.raw.deleted_digests for r in results if r.plan is not None}
    )
    return PolicyPreview(policy=policy, repositories=results, freed=freed, now=now)


@dataclass
class RunResult:
    policy: RetentionPolicy
    executions: list[Execution]
    freed: Freed
    interrupted: bool = False

    @property
    def deleted_tags(self) -> int:
        return sum(len(e.removed_tags) for e in self.executions)

    @property
    def failures(self) -> list[str]:
        problems = []
        for execution in self.executions:
            if execution.error:
                problems.append(f"{execution.repository.name}: {execution.error}")
            for outcome in execution.by_result(Result.FAILED, Result.REFUSED):
                problems.append(f"{execution.repository.name}: {outcome.message}")
        return problems

    @property
    def summary(self) -> str:
        repositories = sum(1 for e in self.executions if e.removed_tags)
        text = (
            f"{self.deleted_tags} tag(s) deleted in {repositories} repositories, "
            f"{iec_size(self.freed.bytes)} to reclaim; {len(self.failures)} failure(s)"
        )
        if self.interrupted:
            text += "; stopped before the end"
        return text.replace("\xa0", " ")


def apply(
    policy: RetentionPolicy,
    planned: PolicyPreview,
    actor: Actor,
    *,
    should_stop=lambda: False,
) -> RunResult:
    """Carry out a dry run's deletions, repository by repository, and audit the run."""
    actor.extra.setdefault("policy", policy.name)
    executions: list[Execution] = []
    interrupted = False
    for item in planned.with_deletions:
        if should_stop():
            interrupted = True
            break
        execution = delete_tags(item.repository, item.expected, actor, mode="retention")
        executions.append(execution)
        if execution.error:
            # Deletes disabled, registry unreachable, credentials refused: the next
            # repositories would fail the same way, so the run stops here.
            interrupted = True
            break
    # Estimated again over the whole run: blobs shared across repositories count once.
    freed = estimate_freed({e.repository.pk: e.deleted_digests for e in executions})
    result = RunResult(policy=policy, executions=executions, freed=freed, interrupted=interrupted)
    kept = (Result.KEPT, Result.CHANGED)
    actor.record(
        AuditEntry.Action.RETENTION_RUN,
        reference=policy.name,
        details={
            "policy": policy.name,
            "pattern": policy.repository_pattern,
            "planned": {r.repository.name: sorted(r.expected) for r in planned.with_deletions},
            "deleted": {e.repository.name: e.removed_tags for e in executions},
            "kept_at_run_time": {
                e.repository.name: [o.reference for o in e.by_result(*kept)]
                for e in executions
                if e.by_result(*kept)
            },
            "freed_bytes": freed.bytes,
            "predicted_bytes": planned.freed.bytes,
            "failures": result.failures,
            "interrupted": interrupted,
        },
        result=(
            AuditEntry.Result.FAILED if result.failures or interrupted else AuditEntry.Result.OK
        ),
        message=result.summary,
    )
    RetentionPolicy.objects.filter(pk=policy.pk).update(
        last_applied_at=timezone.now(), last_result=result.summary[:500]
    )
    return result
