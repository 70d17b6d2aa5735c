"""Carrying out a deletion against the registry, then mirroring it in the database at once.

The confirmation page showed a plan computed from the database. Right before acting, every
confirmed tag is checked against the registry (HEAD): a tag that vanished is "already gone",
a tag that now points elsewhere was pushed again and is left alone. When the plan deletes an
image by digest, the whole repository is read from the registry (``registry_view``: the tags
list and a HEAD per tag) and the plan is computed again from that: a digest is deleted only
when no tag in the registry, other than the confirmed ones, points at it and no tagged index
lists it. A tag pushed onto the image in the meantime therefore survives.

Every step is reported once (``Deleter._report``: its outcome and its audit entry, in the
states of ``outcomes``); the database changes only after the registry said yes (what an
execution removed is written in one go as it ends), so an unreachable registry leaves it as
it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NoReturn

from django.utils import timezone

from registryui.catalog import store
from registryui.catalog.models import Manifest, Repository
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.events.models import ProcessedEvent
from registryui.lib.iters import chunked
from registryui.lib.reference import short_digest
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.client import sha256_digest

from . import untag
from .messages import ALREADY_GONE, DELETES_DISABLED, describe
from .outcomes import Actor, Execution, Outcome, Result, Step
from .plan import (
    DatabaseChildren,
    DeletionPlan,
    build_plan,
    compute,
    holding_indexes,
    repository_tags,
)
from .registry_view import RegistryView

Mode = Literal["tags", "image", "retention"]


class Stop(Exception):
    """Nothing more can be done in this execution (deletes disabled, registry gone, ...)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Deleter:
    """One execution: deletes in one repository, for one actor."""

    def __init__(
        self,
        repository: Repository,
        actor: Actor,
        *,
        mode: Mode = "tags",
        client: RegistryClient | None = None,
    ) -> None:
        self.repository = repository
        self.actor = actor
        self.mode = mode
        self.client = client or get_client()
        self.view = RegistryView(self.client, repository.name)
        self.execution = Execution(repository)
        self._deletes_checked = False
        #: Registry 2.8 refuses DELETE by tag; after one refusal we do not ask again.
        self._tag_delete_refused = False
        #: Tags the registry no longer has, removed from the database when the run ends.
        self._removed: list[str] = []
        self.started = timezone.now()
        #: Exact manifest bytes of the images to delete (stored copies), and of those deleted.
        self._stored: dict[str, tuple[bytes, str]] = {}
        self._originals: dict[str, tuple[bytes, str]] = {}
        #: The plan's tag → digest (the referrers' tags are removed with their digests).
        self._plan_tags: dict[str, str] = {}
        #: Tags the registry now has on another digest than confirmed (a push won).
        self._moved: dict[str, str] = {}

    @property
    def _action(self) -> AuditEntry.Action:
        if self.mode == "image":
            return AuditEntry.Action.DELETE_IMAGE
        return AuditEntry.Action.DELETE_TAG

    def _tag_step(self, tag: str, digest: str, action: AuditEntry.Action | None = None) -> Step:
        return Step(action or self._action, self.repository.name, tag, digest)

    def _image_step(self, digest: str, tags: list[str], *, audit_reference: str = "") -> Step:
        return Step(
            AuditEntry.Action.DELETE_IMAGE,
            self.repository.name,
            digest,
            digest,
            kind="image",
            tags=tuple(tags),
            audit_reference=audit_reference,
        )

    # -- the whole execution ----------------------------------------------------------------

    def run(self, expected: Mapping[str, str]) -> Execution:
        """Delete the confirmed tags (name → digest shown when confirming)."""
        try:
            confirmed = self._recheck(expected)
            plan = self._replan(confirmed)
            self.execution.plan = plan
            if plan is not None and self._allowed(plan, expected):
                self._carry_out(plan)
        except Stop as stop:
            self.execution.error, self.execution.error_code = stop.message, stop.code
        except RegistryError as exc:
            self.execution.error = describe(exc)
            self.execution.error_code = exc.code
            self.actor.record(
                self._action,
                repository=self.repository.name,
                details={"confirmed": dict(expected), "code": exc.code},
                result=AuditEntry.Result.FAILED,
                message=self.execution.error,
            )
        finally:
            self._mirror()
        return self.execution

    def _recheck(self, expected: Mapping[str, str]) -> dict[str, str]:
        confirmed: dict[str, str] = {}
        for tag, digest in expected.items():
            ref = self.view.head(tag)
            if ref is None:
                self._removed.append(tag)
                self._report(self._tag_step(tag, digest), Result.GONE, ALREADY_GONE)
            elif ref.digest != digest:
                message = _changed(tag, ref.digest, digest)
                self._report(self._tag_step(tag, digest), Result.CHANGED, message, now=ref.digest)
            else:
                confirmed[tag] = digest
        return confirmed

    def _replan(self, confirmed: dict[str, str]) -> DeletionPlan | None:
        if not confirmed:
            return None
        database = repository_tags(self.repository)
        tags = dict(database)
        for tag, ref in self.view.heads.items():
            if ref is None:
                tags.pop(tag, None)
            else:
                tags[tag] = ref.digest
        children = DatabaseChildren(tags.values(), fallback=self.view.children_of)
        if compute(tags, confirmed, children).images:
            # A digest deletion takes every tag on it: decide from the registry's own list.
            tags = self.view.all_tags(database)
            children.load(tags.values())
        plan = build_plan(self.repository, confirmed, tags=tags, children_of=children)
        for tag in plan.missing:  # deleted between the HEAD and the tags list
            self._outcome(self._tag_step(tag, confirmed[tag]), Result.GONE, ALREADY_GONE)
        self._removed.extend(plan.missing)
        return plan

    def _allowed(self, plan: DeletionPlan, expected: Mapping[str, str]) -> bool:
        """Delete-image is all or nothing: refuse when it would no longer be what was shown."""
        if self.mode != "image":
            return True
        digest = next(iter(expected.values()))
        problems: list[str] = []
        extra = sorted(t for t, d in plan.tags.items() if d == digest and t not in expected)
        if extra:
            problems.append(
                f"the image gained the tag{'s' if len(extra) > 1 else ''} "
                f"{', '.join(extra)} since you confirmed"
            )
        held = sorted({h for r in plan.tag_removals for h in r.held_by})
        if held:
            problems.append(f"an index tagged {', '.join(held)} now lists it as a platform")
        if not problems:
            return True
        message = "Nothing was deleted: " + "; and ".join(problems) + ". Review it again."
        self._report(
            self._image_step(digest, sorted(expected)),
            Result.REFUSED,
            message,
            confirmed_tags=sorted(expected),
            tags_now=sorted(t for t, d in plan.tags.items() if d == digest),
        )
        return False

    def _carry_out(self, plan: DeletionPlan) -> None:
        steps: list[tuple[str, Any]] = [("image", image) for image in plan.images]
        for removal in plan.tag_removals:
            if self.mode == "retention":
                users = removal.siblings or removal.held_by
                self._outcome(
                    self._tag_step(removal.tag, removal.digest),
                    Result.KEPT,
                    f"kept: its image is now also used by {', '.join(users)}",
                )
            else:
                steps.append(("tag", removal))
        self._stored = stored_bytes([image.digest for image in plan.images])
        self._plan_tags = dict(plan.tags)
        try:
            self._run_steps(steps, plan)
        finally:
            if self._originals:
                self._put_back_raced_tags()

    def _run_steps(self, steps: list[tuple[str, Any]], plan: DeletionPlan) -> None:
        for position, (kind, item) in enumerate(steps):
            try:
                if kind == "image":
                    self._delete_image(item, plan)
                else:
                    self._delete_tag(item, plan)
            except Stop:
                for later_kind, later in steps[position + 1 :]:
                    self._outcome(
                        self._image_step(later.digest, later.tags)
                        if later_kind == "image"
                        else self._tag_step(later.tag, later.digest),
                        Result.SKIPPED,
                        "not tried: the action stopped before it",
                    )
                raise

    # -- deleting an image (its digest) -----------------------------------------------------

    def _delete_image(self, image, plan: DeletionPlan) -> None:
        name = self.repository.name
        audit: dict[str, Any] = {"tags": image.tags, "children": image.child_digests}
        if image.referrers:
            audit["referrers"] = image.referrer_digests
        if len(plan.images) == 1:
            # The plan's estimate is this image's. A batch's total is estimated once, over all
            # of it, and audited by its summary entry: an estimate per image would walk every
            # manifest sharing a blob with it, once per image (quadratic in a large batch).
            audit["freed_bytes"] = plan.freed.bytes
        step = self._image_step(
            image.digest,
            image.tags,
            audit_reference=image.tags[0] if len(image.tags) == 1 else image.digest,
        )
        # The exact bytes, in hand before the delete: a tag pushed onto the image meanwhile can
        # then be put back (the blobs stay until garbage-collect; the manifest is re-created).
        original = self._stored.get(image.digest, (b"", ""))
        note = ""
        try:
            self.client.delete_manifest(name, image.digest)
        except RegistryError as exc:
            if self._image_state(image.digest) != "absent":
                # Still there (not applied, or a false "not found"), or unknown: the rows
                # stay as they are and the next sync decides.
                self._fail(step, exc, **audit)
            if exc.missing:
                self._removed.extend(image.tags)
                self._report(step, Result.GONE, ALREADY_GONE, **audit)
                return
            # Applied, though the answer was an error: the image is gone as asked.
            note = f"(The registry answered “{describe(exc)}”, but the image is gone.) "
            audit["recovered"] = exc.code or str(exc.status)
        self._originals[image.digest] = original
        self._removed.extend(image.tags)
        deleted_children, child_errors = [], []
        for child_digest in image.child_digests:
            try:
                self.client.delete_manifest(name, child_digest)
                deleted_children.append(child_digest)
            except RegistryError as exc:
                if exc.missing:
                    continue
                # The index is gone already; an undeleted child only keeps its space.
                child_errors.append(f"{short_digest(child_digest)}: {describe(exc)}")
        deleted_referrers, referrer_errors = self._delete_referrers(image)
        message = note
        if child_errors:
            message += (
                "The image is deleted, but some of its platform images could not be: "
                + "; ".join(child_errors)
                + ". They keep their space until deleted."
            )
        if referrer_errors:
            message += (
                " The image is deleted, but some of its signatures or attestations could not "
                "be: " + "; ".join(referrer_errors) + ". Delete them from their own pages."
            ).lstrip()
        extra = {}
        if image.referrers:
            extra = {"referrers_deleted": deleted_referrers, "referrers_failed": referrer_errors}
        self._report(
            step,
            Result.DONE,
            message,
            audit_message=message or f"Deleted {len(image.tags)} tag(s) with the image.",
            **audit,
            children_deleted=deleted_children,
            children_failed=child_errors,
            **extra,
        )

    def _delete_referrers(self, image) -> tuple[list[str], list[str]]:
        """Delete what was attached to a deleted image (its subject is gone, so a signature
        or SBOM of it is useless); each DELETE by digest takes the referrer's tags too."""
        name = self.repository.name
        deleted, errors = [], []
        referrer_tags = {}
        for tag in image.referrer_tags:
            referrer_tags.setdefault(self._plan_tags.get(tag), []).append(tag)
        for digest in image.referrer_digests:
            try:
                self.client.delete_manifest(name, digest)
            except RegistryError as exc:
                if not exc.missing:
                    errors.append(f"{short_digest(digest)}: {describe(exc)}")
                    continue
            deleted.append(digest)
            self._removed.extend(referrer_tags.get(digest, []))
        return deleted, errors

    # -- removing one tag, keeping its siblings ---------------------------------------------

    def _delete_tag(self, removal, plan: DeletionPlan) -> None:
        tag, digest = removal.tag, removal.digest
        step = self._tag_step(tag, digest, AuditEntry.Action.DELETE_TAG)
        audit = {"siblings_kept": removal.siblings, "held_by": removal.held_by, "freed_bytes": 0}
        try:
            untagged = self._remove_tag(tag, digest)
        except RegistryError as exc:
            # Raised only while nothing had been changed in the registry.
            self._fail(step, exc, **audit)
        except Stop as stop:
            self._report(step, Result.FAILED, stop.message, **audit, code=stop.code)
            raise
        details = {**audit, **untagged.details, "method": untagged.method}
        if untagged.restore:
            details["restore"] = untagged.restore
        if untagged.result in (Result.DONE, Result.GONE):
            self._removed.append(tag)
            if untagged.result == Result.GONE:
                message = ALREADY_GONE
            else:
                kept = ", ".join(removal.siblings + removal.held_by)
                message = f"Deleted {tag}" + (f"; kept {kept}" if kept else "") + "."
                if untagged.message:
                    message += " " + untagged.message
            self._report(step, untagged.result, message, **details)
            return
        if untagged.now:
            self._moved[tag] = untagged.now
        elif untagged.restore:
            self._removed.append(tag)
        self._report(step, untagged.result, untagged.message, **details, now=untagged.now)
        if untagged.stop:
            raise Stop(untagged.message, untagged.code)

    def _remove_tag(self, tag: str, digest: str) -> untag.Untagged:
        """Remove just this tag from the registry and say what the registry holds afterwards.

        Raises ``RegistryError`` only while nothing has been changed."""
        name = self.repository.name
        if not self._tag_delete_refused:
            try:
                self.client.delete_manifest(name, tag)  # registry 3.x removes just the tag
            except RegistryError as exc:
                if exc.missing:
                    return untag.Untagged(Result.GONE, method="tag")
                if exc.status not in (400, 405):
                    raise
                # 2.8 answers 400 DIGEST_INVALID. 405 may mean "not by tag" or "not at all":
                # the probe below tells which before anything is changed.
                self._tag_delete_refused = True
            else:
                return self._check_tag_deleted(tag, digest)
        self._check_deletes_enabled()
        sequence = untag.Sequence(self.client, name, tag, digest, pushes_since=recorded_pushes)
        result = sequence.run()
        result.method = "placeholder"
        return result

    def _check_tag_deleted(self, tag: str, digest: str) -> untag.Untagged:
        """After a DELETE by tag that the registry accepted: is the tag really gone?"""
        try:
            ref = self.view.head(tag, fresh=True)
        except RegistryError:
            return untag.Untagged(
                Result.DONE, "(the registry did not answer the check afterwards)", method="tag"
            )
        if ref is None:
            return untag.Untagged(Result.DONE, method="tag")
        if ref.digest == digest:
            return untag.Untagged(
                Result.FAILED,
                f"The registry accepted deleting {tag} but still serves it: nothing was deleted.",
                now=digest,
                method="tag",
            )
        return untag.Untagged(
            Result.CHANGED, _changed(tag, ref.digest, digest), now=ref.digest, method="tag"
        )

    def _head_or_unknown(self, tag: str) -> str | None:
        """The tag's digest now, '' when it has none, None when the registry does not say."""
        try:
            return self.client.head_manifest(self.repository.name, tag).digest
        except RegistryError as exc:
            return "" if exc.missing else None

    def _image_state(self, digest: str) -> Literal["present", "absent", "unknown"]:
        """After a DELETE answered with an error: is the manifest still there?"""
        try:
            self.client.head_manifest(self.repository.name, digest)
        except RegistryError as exc:
            if exc.missing:
                return "absent"
            return "unknown"
        return "present"

    def _put_back_raced_tags(self) -> None:
        """Tags pushed onto a deleted image after the tags list was read went with it: put
        each back (where the notification endpoint recorded the push) and say so. One query
        for the whole execution, after its deletes."""
        name = self.repository.name
        deleted = {o.digest: o for o in self.execution.by_result(Result.DONE) if o.kind == "image"}
        raced: dict[str, list[str]] = {}
        for chunk in chunked(list(deleted)):
            events = ProcessedEvent.objects.filter(
                action="push", repository=name, digest__in=chunk, received_at__gte=self.started
            ).exclude(tag="")
            for digest, tag in events.values_list("digest", "tag"):
                if tag not in deleted[digest].tags and tag not in raced.get(digest, []):
                    raced.setdefault(digest, []).append(tag)
        for digest, tags in raced.items():
            body, media_type = self._originals.get(digest, (b"", ""))
            outcome = deleted[digest]
            for tag in tags:
                if self._head_or_unknown(tag) != "":
                    continue  # it has an image (pushed again since), or we cannot tell: leave it
                ok = False
                if body:
                    try:
                        self.client.put_manifest(name, tag, body, media_type)
                        ok = self.client.head_manifest(name, tag).digest == digest
                    except RegistryError:
                        ok = False
                message = (
                    f"{tag} was pushed onto {short_digest(digest)} while it was being deleted: "
                    + (
                        "the image was put back under that tag (only under it)."
                        if ok
                        else f"putting it back failed; push {short_digest(digest)} to it again."
                    )
                )
                outcome.message = f"{outcome.message} {message}".strip()
                outcome.details.setdefault("pushed_meanwhile", {})[tag] = ok
                if not ok:
                    self._removed.append(tag)
                Step(AuditEntry.Action.RESTORE_TAG, name, tag, digest).audit(
                    self.actor,
                    AuditEntry.Result.OK if ok else AuditEntry.Result.FAILED,
                    message,
                    pushed_meanwhile=True,
                )

    def _check_deletes_enabled(self) -> None:
        """Ask the registry to delete a digest that cannot exist: 404 yes, 405 no deletes.

        Done before the placeholder is pushed, so that a registry without deletes never ends
        up with a tag pointing at a placeholder.
        """
        if self._deletes_checked:
            return
        probe = sha256_digest(b"registryui delete probe " + secrets.token_bytes(16))
        try:
            self.client.delete_manifest(self.repository.name, probe)
        except RegistryError as exc:
            if exc.code == "UNSUPPORTED" or exc.status == 405:
                raise Stop(DELETES_DISABLED, "UNSUPPORTED") from exc
            if not exc.missing:
                raise
        self._deletes_checked = True

    # -- bookkeeping ----------------------------------------------------------------------

    def _mirror(self) -> None:
        """Remove what the registry no longer has from the database, in one write.

        Once per run rather than per step: each write recounts the repository's tags and
        bytes, which a batch of hundreds of images would otherwise do hundreds of times.
        """
        if self._removed:
            store.remove_tags(self.repository, self._removed)
            self._removed = []
        for tag, digest in self._moved.items():
            # A push won the race: point the row at it when its manifest is known here (the
            # notification handler stores it); otherwise the next sync does.
            manifest_id = Manifest.objects.filter(digest=digest).values_list("id", flat=True)
            if manifest_id:
                store.set_tag(self.repository, tag, manifest_id[0])
        self._moved = {}

    def _outcome(self, step: Step, result: Result, message: str = "", **details) -> Outcome:
        outcome = Outcome(
            kind=step.kind,
            reference=step.reference,
            digest=step.digest,
            result=result,
            message=message,
            tags=list(step.tags),
            details=details,
        )
        self.execution.outcomes.append(outcome)
        return outcome

    def _report(
        self, step: Step, result: Result, message: str, *, audit_message: str = "", **details
    ) -> Outcome:
        """A step's outcome and its audit entry, which always go together (``details`` in
        both); ``audit_message`` when the log needs words the result page does without."""
        outcome = self._outcome(step, result, message, **details)
        step.audit(self.actor, result.audit_result, audit_message or message, **details)
        return outcome

    def _fail(self, step: Step, exc: RegistryError, **details) -> NoReturn:
        message = describe(exc, nothing_changed=not self.execution.by_result(Result.DONE))
        self._report(step, Result.FAILED, message, **details, code=exc.code, status=exc.status)
        code = "UNSUPPORTED" if message == DELETES_DISABLED else exc.code
        raise Stop(message, code) from exc


def _changed(tag: str, digest: str, expected: str) -> str:
    """Why a tag that now points at ``digest`` instead of ``expected`` was left alone."""
    return (
        f"{tag} now points at {short_digest(digest)}, not {short_digest(expected)}: "
        "it was pushed again after you confirmed, so it was left alone."
    )


def stored_bytes(digests: list[str]) -> dict[str, tuple[bytes, str]]:
    """The stored manifest bytes of these digests that hash to their digest (chunked)."""
    found: dict[str, tuple[bytes, str]] = {}
    for chunk in chunked(digests):
        rows = Manifest.objects.filter(digest__in=chunk).values_list("digest", "raw", "media_type")
        for digest, raw, media_type in rows:
            body = (raw or "").encode("utf-8", errors="surrogateescape")
            if body and sha256_digest(body) == digest:
                found[digest] = (body, media_type)
    return found


def recorded_pushes(name: str, tag: str, since: datetime) -> list[str]:
    """The digests pushed to ``name:tag`` since ``since`` that the notification endpoint
    recorded, newest first (none where the registry sends no notifications)."""
    return list(
        ProcessedEvent.objects.filter(
            action="push", repository=name, tag=tag, received_at__gte=since
        )
        .exclude(digest="")
        .order_by("-received_at", "-id")
        .values_list("digest", flat=True)[:20]
    )


def delete_tags(
    repository: Repository, expected: Mapping[str, str], actor: Actor, *, mode: Mode = "tags"
) -> Execution:
    """Delete confirmed tags (name → digest) of one repository; see the module docstring."""
    return Deleter(repository, actor, mode=mode).run(expected)


def bulk_delete(repository: Repository, expected: Mapping[str, str], actor: Actor) -> Execution:
    """``delete_tags`` for a confirmed selection, with one audit entry for the whole batch
    besides each step's (the bulk delete page and the API)."""
    execution = delete_tags(repository, expected, actor)
    actor.record(
        AuditEntry.Action.BULK_DELETE,
        repository=repository.name,
        reference=f"{len(expected)} tags",
        details={
            "confirmed": dict(expected),
            "removed": execution.removed_tags,
            "results": {o.reference: o.result for o in execution.outcomes},
            "freed_bytes": execution.freed.bytes,
        },
        result=AuditEntry.Result.OK if execution.ok else AuditEntry.Result.FAILED,
        message=execution.error,
    )
    return execution


class HeldByIndex:
    """An image that tagged indexes of its repository list as a platform: deleting it would
    leave them tagged but unpullable, so an image delete refuses it."""

    def __init__(self, repository: Repository, digest: str, holders) -> None:
        self.repository = repository
        self.digest = digest
        #: [(index digest, its tags)]
        self.holders: list[tuple[str, list[str]]] = holders
        names = "; ".join(
            f"{repository.name}:{', '.join(tags)} ({short_digest(index)})"
            for index, tags in holders
        )
        self.message = (
            f"{short_digest(digest)} is a platform image of the index {names}, "
            "which is still tagged. Deleting it would break that index; delete the index "
            "instead, or delete just a tag of this image."
        )

    def refuse(self, actor: Actor) -> None:
        """Audit a refused delete of this image."""
        actor.record(
            AuditEntry.Action.DELETE_IMAGE,
            repository=self.repository.name,
            reference=self.digest,
            digest=self.digest,
            details={"held_by": dict(self.holders)},
            result=AuditEntry.Result.REFUSED,
            message=self.message,
        )


def held_by_index(repository: Repository, digest: str) -> HeldByIndex | None:
    holders = holding_indexes(repository, digest)
    return HeldByIndex(repository, digest, holders) if holders else None
