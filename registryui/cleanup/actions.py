"""Carrying out a deletion against the registry, then mirroring it in the database at once.

The confirmation page showed a plan computed from the database. Right before acting, every
confirmed tag is checked against the registry (HEAD): a tag that vanished is "already gone",
a tag that now points elsewhere was pushed again and is left alone. When the plan deletes an
image by digest, the whole repository is read from the registry (tags list and a HEAD per tag)
and the plan is computed again from that: a digest is deleted only when no tag in the
registry, other than the confirmed ones, points at it and no tagged index lists it. A tag
pushed onto the image in the meantime therefore survives.

Every step is audited; the database changes only after the registry said yes (what an
execution removed is written in one go as it ends), so an unreachable registry leaves it as
it was.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from django.conf import settings
from django.utils import timezone

from registryui.catalog import store
from registryui.catalog.manifests import ManifestFormatError, parse_manifest
from registryui.catalog.models import Manifest, Repository
from registryui.catalog.upstream import get_client
from registryui.core.audit import record
from registryui.core.models import AuditEntry
from registryui.events.models import ProcessedEvent
from registryui.lib.iters import chunked
from registryui.lib.reference import short_digest
from registryui.registry import ManifestRef, RegistryClient, RegistryError
from registryui.registry.client import sha256_digest
from registryui.registry.mediatypes import INDEX_TYPES

from . import untag
from .freed import Freed, estimate_freed
from .messages import ALREADY_GONE, DELETES_DISABLED, describe
from .plan import DatabaseChildren, DeletionPlan, build_plan, compute, repository_tags

Mode = Literal["tags", "image", "retention"]


@dataclass
class Actor:
    """Who acts and how it is audited: a request's user ("ui") or a policy ("policy")."""

    request: Any = None
    user: Any = None
    name: str = ""
    via: str = "ui"
    #: Ties together the entries of one bulk delete or retention run in the audit log.
    batch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, action: str, **kwargs) -> AuditEntry:
        details = {"batch": self.batch, **self.extra, **kwargs.pop("details", {})}
        return record(
            action,
            request=self.request,
            user=self.user,
            actor_name=self.name,
            via=self.via,
            details=details,
            **kwargs,
        )


@dataclass
class Outcome:
    """What happened to one step of a deletion."""

    kind: Literal["image", "tag"]
    #: The tag (kind "tag"), or the image's digest (kind "image").
    reference: str
    digest: str
    #: done · gone (already gone) · changed (re-pushed, left alone) · kept (retention: its
    #: image is in use) · refused · failed · skipped (not tried after a failure)
    result: str
    message: str = ""
    tags: list[str] = field(default_factory=list)
    #: "digest", "tag" (3.x) or "placeholder" (2.8).
    method: str = ""
    children: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    repository: Repository
    outcomes: list[Outcome] = field(default_factory=list)
    #: Why everything stopped (deletes disabled, registry unreachable, ...); '' otherwise.
    error: str = ""
    error_code: str = ""
    #: The plan that was carried out, computed from the registry's answers.
    plan: DeletionPlan | None = None

    def by_result(self, *results: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.result in results]

    def tags_with(self, *results: str) -> list[str]:
        """The tags of the outcomes with these results (an image's tags, or the one tag)."""
        return [tag for o in self.by_result(*results) for tag in (o.tags or [o.reference])]

    @property
    def deleted_digests(self) -> list[str]:
        """The manifests deleted: the images, and the platform images of deleted indexes."""
        done = [o for o in self.by_result("done") if o.kind == "image"]
        return [o.digest for o in done] + [c for o in done for c in o.children]

    @cached_property
    def freed(self) -> Freed:
        """The bytes garbage-collect gives back, estimated when first asked (after the run, once
        the database mirrors it): a retention run estimates its whole batch once instead."""
        return estimate_freed({self.repository.pk: self.deleted_digests})

    @property
    def removed_tags(self) -> list[str]:
        return self.tags_with("done", "gone")

    @property
    def deleted_tags(self) -> list[str]:
        return self.tags_with("done")

    @property
    def gone_tags(self) -> list[str]:
        return self.tags_with("gone")

    @property
    def ok(self) -> bool:
        return not self.error and all(o.result in ("done", "gone", "kept") for o in self.outcomes)

    @property
    def status_code(self) -> int:
        """200 when done, 409 when refused or changed meanwhile, 502 when the registry failed."""
        if self.error or self.by_result("failed"):
            return 409 if self.error_code in ("UNSUPPORTED", "REFUSED") else 502
        if self.by_result("refused", "changed"):
            return 409
        return 200


class Stop(Exception):
    """Nothing more can be done in this execution (deletes disabled, registry gone, ...)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RegistryView:
    """What the registry says right now about one repository, each tag asked at most once."""

    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name
        self.heads: dict[str, ManifestRef | None] = {}
        self._children: dict[str, list[str]] = {}

    def head(self, tag: str, *, fresh: bool = False) -> ManifestRef | None:
        if fresh or tag not in self.heads:
            try:
                self.heads[tag] = self.client.head_manifest(self.name, tag)
            except RegistryError as exc:
                if not (exc.status == 404 or exc.not_found):
                    raise
                self.heads[tag] = None
        return self.heads[tag]

    def all_tags(self, known: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every tag of the repository with its digest: the tags list, then a HEAD per tag.

        A digest deletion takes every tag on it, so this errs towards seeing a tag: the tags
        the database ``known`` are asked too (a list that leaves one out must not hide it), a
        listed tag whose HEAD says 404 is asked twice more, and a tag whose HEAD disagrees with
        the database (or that the database does not know) is fetched and its digest computed
        from its bytes: a wrong ``Docker-Content-Digest`` must not hide a sibling.
        """
        known = dict(known or {})
        try:
            listed = self.client.list_tags(self.name)
        except RegistryError as exc:
            if exc.code != "NAME_UNKNOWN":
                raise
            listed = []
        names = list(dict.fromkeys([*listed, *known]))
        todo = [n for n in names if n not in self.heads]
        if todo:
            workers = max(1, min(settings.SYNC_CONCURRENCY, len(todo)))
            with ThreadPoolExecutor(workers, thread_name_prefix="cleanup-head") as pool:
                # list() re-raises the first RegistryError of any HEAD here, in this thread.
                list(pool.map(self.head, todo))
        for name in listed:
            for _ in range(2):
                if self.heads.get(name) is not None:
                    break
                self.head(name, fresh=True)
        for name in names:
            ref = self.heads.get(name)
            if ref is not None and known.get(name) != ref.digest:
                self.heads[name] = self._verified(name, ref)
        return {n: ref.digest for n in names if (ref := self.heads.get(n)) is not None}

    def _verified(self, tag: str, ref: ManifestRef) -> ManifestRef | None:
        """The tag's manifest fetched, its digest computed from the bytes."""
        try:
            fetched, body = self.client.get_manifest(self.name, tag)
        except RegistryError as exc:
            if exc.status == 404 or exc.not_found:
                return ref  # keep what the HEAD said: seeing a tag too many is the safe side
            raise
        return ManifestRef(sha256_digest(body), fetched.media_type or ref.media_type, len(body))

    def children_of(self, digest: str) -> list[str]:
        """Children of a digest the database has never seen (re-pushed since the last sync)."""
        if digest not in self._children:
            media_types = {r.media_type for r in self.heads.values() if r and r.digest == digest}
            if media_types and not media_types & INDEX_TYPES:
                self._children[digest] = []
            else:
                ref, body = self.client.get_manifest(self.name, digest)
                try:
                    fetched = parse_manifest(digest, ref.media_type, body)
                    self._children[digest] = [child.digest for child in fetched.children]
                except ManifestFormatError:
                    self._children[digest] = []
        return self._children[digest]


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
        #: Tags the registry now has on another digest than confirmed (a push won).
        self._moved: dict[str, str] = {}

    @property
    def _action(self) -> str:
        return "delete_image" if self.mode == "image" else "delete_tag"

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
                self._outcome("tag", tag, digest, "gone", ALREADY_GONE)
                self.actor.record(
                    self._action,
                    repository=self.repository.name,
                    reference=tag,
                    digest=digest,
                    message=ALREADY_GONE,
                )
            elif ref.digest != digest:
                changed = _Changed(ref.digest, tag, digest)
                self._outcome(
                    "tag", tag, digest, "changed", changed.message, details={"now": ref.digest}
                )
                self.actor.record(
                    self._action,
                    repository=self.repository.name,
                    reference=tag,
                    digest=digest,
                    details={"now": ref.digest},
                    result=AuditEntry.Result.REFUSED,
                    message=changed.message,
                )
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
            self._outcome("tag", tag, confirmed[tag], "gone", ALREADY_GONE)
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
        self._outcome("image", digest, digest, "refused", message, tags=sorted(expected))
        self.actor.record(
            "delete_image",
            repository=self.repository.name,
            reference=digest,
            digest=digest,
            details={
                "confirmed_tags": sorted(expected),
                "tags_now": sorted(t for t, d in plan.tags.items() if d == digest),
            },
            result=AuditEntry.Result.REFUSED,
            message=message,
        )
        return False

    def _carry_out(self, plan: DeletionPlan) -> None:
        steps: list[tuple[str, Any]] = [("image", image) for image in plan.images]
        for removal in plan.tag_removals:
            if self.mode == "retention":
                users = removal.siblings or removal.held_by
                self._outcome(
                    "tag",
                    removal.tag,
                    removal.digest,
                    "kept",
                    f"kept: its image is now also used by {', '.join(users)}",
                )
            else:
                steps.append(("tag", removal))
        self._stored = stored_bytes([image.digest for image in plan.images])
        try:
            self._run_steps(steps, plan)
        finally:
            if self._originals:
                self._put_back_raced_tags()

    def _run_steps(self, steps: list[tuple[str, Any]], plan: DeletionPlan) -> None:
        for position, (kind, step) in enumerate(steps):
            try:
                if kind == "image":
                    self._delete_image(step, plan)
                else:
                    self._delete_tag(step, plan)
            except Stop:
                for later_kind, later in steps[position + 1 :]:
                    self._outcome(
                        later_kind,
                        later.digest if later_kind == "image" else later.tag,
                        later.digest,
                        "skipped",
                        "not tried: the action stopped before it",
                        tags=getattr(later, "tags", []),
                    )
                raise

    # -- deleting an image (its digest) -----------------------------------------------------

    def _delete_image(self, image, plan: DeletionPlan) -> None:
        name = self.repository.name
        audit: dict[str, Any] = {"tags": image.tags, "children": image.child_digests}
        if len(plan.images) == 1:
            # The plan's estimate is this image's. A batch's total is estimated once, over all
            # of it, and audited by its summary entry: an estimate per image would walk every
            # manifest sharing a blob with it, once per image (quadratic in a large batch).
            audit["freed_bytes"] = plan.freed.bytes
        action = "delete_image"
        reference = image.tags[0] if len(image.tags) == 1 else image.digest
        # The exact bytes, in hand before the delete: a tag pushed onto the image meanwhile can
        # then be put back (the blobs stay until garbage-collect; the manifest is re-created).
        original = self._stored.get(image.digest, (b"", ""))
        note = ""
        try:
            self.client.delete_manifest(name, image.digest)
        except RegistryError as exc:
            state = self._image_state(image.digest)
            if state != "absent":
                # Still there (not applied, or a false "not found"), or unknown: the rows
                # stay as they are and the next sync decides.
                self._fail("image", image.digest, image.tags, exc, action, reference, audit)
            if exc.not_found or exc.status == 404:
                self._removed.extend(image.tags)
                self._outcome(
                    "image", image.digest, image.digest, "gone", ALREADY_GONE, tags=image.tags
                )
                self.actor.record(
                    action,
                    repository=name,
                    reference=reference,
                    digest=image.digest,
                    details=audit,
                    message=ALREADY_GONE,
                )
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
                if exc.not_found or exc.status == 404:
                    continue
                # The index is gone already; an undeleted child only keeps its space.
                child_errors.append(f"{short_digest(child_digest)}: {describe(exc)}")
        message = note
        if child_errors:
            message += (
                "The image is deleted, but some of its platform images could not be: "
                + "; ".join(child_errors)
                + ". They keep their space until deleted."
            )
        self._outcome(
            "image",
            image.digest,
            image.digest,
            "done",
            message,
            tags=image.tags,
            method="digest",
            children=deleted_children,
        )
        self.actor.record(
            action,
            repository=name,
            reference=reference,
            digest=image.digest,
            details={
                **audit,
                "children_deleted": deleted_children,
                "children_failed": child_errors,
            },
            message=message or f"Deleted {len(image.tags)} tag(s) with the image.",
        )

    # -- removing one tag, keeping its siblings ---------------------------------------------

    def _delete_tag(self, removal, plan: DeletionPlan) -> None:
        name, tag, digest = self.repository.name, removal.tag, removal.digest
        audit = {"siblings_kept": removal.siblings, "held_by": removal.held_by, "freed_bytes": 0}
        try:
            untagged = self._remove_tag(tag, digest)
        except RegistryError as exc:
            # Raised only while nothing had been changed in the registry.
            self._fail("tag", tag, [tag], exc, "delete_tag", tag, audit, digest=digest)
        except Stop as stop:
            self._outcome("tag", tag, digest, "failed", stop.message)
            self.actor.record(
                "delete_tag",
                repository=name,
                reference=tag,
                digest=digest,
                details={**audit, "code": stop.code},
                result=AuditEntry.Result.FAILED,
                message=stop.message,
            )
            raise
        details = {**audit, **untagged.details, "method": untagged.method}
        if untagged.restore:
            details["restore"] = untagged.restore
        if untagged.result in ("done", "gone"):
            self._removed.append(tag)
            if untagged.result == "gone":
                message = ALREADY_GONE
            else:
                kept = ", ".join(removal.siblings + removal.held_by)
                message = f"Deleted {tag}" + (f"; kept {kept}" if kept else "") + "."
                if untagged.message:
                    message += " " + untagged.message
            self._outcome(
                "tag",
                tag,
                digest,
                untagged.result,
                message,
                method=untagged.method,
                details=details,
            )
            self.actor.record(
                "delete_tag",
                repository=name,
                reference=tag,
                digest=digest,
                details=details,
                message=message,
            )
            return
        if untagged.now:
            self._moved[tag] = untagged.now
        elif untagged.restore:
            self._removed.append(tag)
        self._outcome(
            "tag",
            tag,
            digest,
            untagged.result,
            untagged.message,
            details={**details, "now": untagged.now},
        )
        self.actor.record(
            "delete_tag",
            repository=name,
            reference=tag,
            digest=digest,
            details={**details, "now": untagged.now},
            result=(
                AuditEntry.Result.REFUSED
                if untagged.result == "changed"
                else AuditEntry.Result.FAILED
            ),
            message=untagged.message,
        )
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
                if exc.not_found or exc.status == 404:
                    return untag.Untagged("gone", method="tag")
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
                "done", "(the registry did not answer the check afterwards)", method="tag"
            )
        if ref is None:
            return untag.Untagged("done", method="tag")
        if ref.digest == digest:
            return untag.Untagged(
                "failed",
                f"The registry accepted deleting {tag} but still serves it: nothing was deleted.",
                now=digest,
                method="tag",
            )
        changed = _Changed(ref.digest, tag, digest)
        return untag.Untagged("changed", changed.message, now=ref.digest, method="tag")

    def _head_or_unknown(self, tag: str) -> str | None:
        """The tag's digest now, '' when it has none, None when the registry does not say."""
        try:
            return self.client.head_manifest(self.repository.name, tag).digest
        except RegistryError as exc:
            return "" if (exc.not_found or exc.status == 404) else None

    def _image_state(self, digest: str) -> Literal["present", "absent", "unknown"]:
        """After a DELETE answered with an error: is the manifest still there?"""
        try:
            self.client.head_manifest(self.repository.name, digest)
        except RegistryError as exc:
            if exc.not_found or exc.status == 404:
                return "absent"
            return "unknown"
        return "present"

    def _put_back_raced_tags(self) -> None:
        """Tags pushed onto a deleted image after the tags list was read went with it: put
        each back (where the notification endpoint recorded the push) and say so. One query
        for the whole execution, after its deletes."""
        name = self.repository.name
        deleted = {o.digest: o for o in self.execution.by_result("done") if o.kind == "image"}
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
                self.actor.record(
                    "restore_tag",
                    repository=name,
                    reference=tag,
                    digest=digest,
                    details={"pushed_meanwhile": True},
                    result=AuditEntry.Result.OK if ok else AuditEntry.Result.FAILED,
                    message=message,
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
            if not (exc.not_found or exc.status == 404):
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

    def _outcome(self, kind, reference, digest, result, message="", **kwargs) -> Outcome:
        outcome = Outcome(
            kind=kind, reference=reference, digest=digest, result=result, message=message, **kwargs
        )
        self.execution.outcomes.append(outcome)
        return outcome

    def _fail(
        self,
        kind,
        reference,
        tags,
        exc: RegistryError,
        action,
        audit_reference,
        audit,
        digest: str | None = None,
    ) -> None:
        nothing = not self.execution.by_result("done")
        message = describe(exc, nothing_changed=nothing)
        digest = digest or reference
        self._outcome(kind, reference, digest, "failed", message, tags=tags)
        self.actor.record(
            action,
            repository=self.repository.name,
            reference=audit_reference,
            digest=digest,
            details={**audit, "code": exc.code, "status": exc.status},
            result=AuditEntry.Result.FAILED,
            message=message,
        )
        code = "UNSUPPORTED" if message == DELETES_DISABLED else exc.code
        raise Stop(message, code) from exc


class _Changed(Exception):
    def __init__(self, digest: str, tag: str, expected: str) -> None:
        self.digest = digest
        self.message = (
            f"{tag} now points at {short_digest(digest)}, not {short_digest(expected)}: "
            "it was pushed again after you confirmed, so it was left alone."
        )
        super().__init__(self.message)


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
