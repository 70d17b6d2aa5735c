"""Registry notifications into the database: fast, idempotent, tolerant of order.

The registry (2.8) keeps one in-memory queue per endpoint and sends one event at a time: until we
answer, every later event waits, and an event we fail is retried forever. So:

- Pulls, mounts and blob pushes are counted and dropped without touching the registry or any
  table but the counters.
- A manifest push with a tag upserts that tag; the manifest and config are fetched (through the
  ``catalog.fetch.ManifestFetcher`` and written by ``catalog.store``) only when the digest is new.
- An OCI manifest pushed by digest only is read (one GET, unless stored): when it names a
  ``subject`` (a signature, SBOM or attestation of cosign 3, notation, ``oras attach``) it is
  stored and linked to that image as the sync links what the referrers API lists
  (``catalog.referrers.link_referrers``); anything else (an index's platform images) is
  ignored, as it shows nowhere until a tag points at it.
- A delete by digest removes the repository's tags on that digest and its link as a referrer;
  a tag delete removes the tag.
- Every manifest event's id is recorded first: the same id again changes nothing.
- When an event is older than what we already know (a later event on the same tag or digest was
  handled, or the UI first saw the tag or saw it change after the event's time: the history the
  UI recorded, never an image's build date), we do not trust it: we ask the registry for the
  tag's current digest (a HEAD) and store that.
- Nothing is removed and no repository is created on an event's word alone: a delete is applied
  only once the registry confirms (a HEAD answers 404), a push into a repository we do not know
  only once the registry has the manifest there. An event the registry contradicts is recorded
  as *rejected* and changes nothing.
- Tag writes are ordered by event time (``TagClock``): two deliveries racing on one tag (registry
  replicas) end with the newer event's digest, on SQLite and PostgreSQL alike.
- Everything read from an event passes ``lib.untrusted`` first (NUL, lone surrogates, unreadable
  or out-of-range times); an event that still makes no sense is rejected alone, with a 2xx for
  the delivery, never a 500 (which the registry would retry forever, holding back every later
  event).
- Registry calls use a client with short timeouts and the whole delivery has a time budget. An
  event we cannot finish now (registry slow or failing) is recorded as *deferred* and answered
  with 2xx all the same: failing it would make the registry retry it forever and hold up every
  later event, while the periodic full sync reconciles the tag anyway. Nothing is ever deleted
  on an upstream failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registryui.catalog.fetch import ManifestFetcher
from registryui.catalog.manifests import ManifestFormatError, parse_manifest
from registryui.catalog.models import ApiReferrer, Manifest, Repository, Tag
from registryui.catalog.referrers import link_referrers, unlink_referrer
from registryui.catalog.store import manifest_ids, remove_tags, set_tag, store_manifests
from registryui.lib.reference import is_valid_digest, is_valid_name, is_valid_tag
from registryui.lib.untrusted import clean_text, parse_timestamp
from registryui.registry import RegistryClient, RegistryError
from registryui.registry.mediatypes import MANIFEST_TYPES, SUBJECT_TYPES
from registryui.webhooks.emit import Occurrence, emit

from .models import EventStats, ProcessedEvent, TagClock
from .own import made_by_this_ui

log = logging.getLogger(__name__)


#: Content types of a notification envelope: 2.8 sends v1, newer registries v2.
ENVELOPE_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.events.v1+json",
        "application/vnd.docker.distribution.events.v2+json",
        "application/json",
    }
)
#: Seconds one delivery may spend starting registry calls. A call started just before the end
#: can take one more connect + read timeout of the quick client (1 + 2 s, the
#: ``QUICK_*_TIMEOUT`` of catalog/upstream.py): about 5 s at worst, the endpoint timeout the
#: README recommends, so the registry does not give up on us first.
DELIVERY_BUDGET = 2.0
#: The largest lag ``ProcessedEvent.lag_ms`` holds (about 24.8 days): an older event (a registry
#: clock far behind, a replay) records this rather than fail the delivery on PostgreSQL.
MAX_LAG_MS = 2**31 - 1
#: An event dated further ahead of our clock than this has an unknown time: trusting it would
#: let one event (a registry clock far ahead, a forgery) outrank every real later event on its
#: tag (``TagClock``) until that time comes.
MAX_CLOCK_AHEAD = timedelta(minutes=5)

APPLIED = "applied"
UNCHANGED = "unchanged"
IGNORED = "ignored"
DUPLICATE = "duplicates"
DEFERRED = "deferred"
REJECTED = "rejected"


class InvalidEvent(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    id: str
    action: str
    repository: str
    tag: str
    digest: str
    timestamp: datetime | None
    #: Who the registry says acted (its ``actor.name``: the user it authenticated), if anyone.
    actor: str = ""
    #: The client's User-Agent as the registry saw it (``request.useragent``).
    user_agent: str = ""

    @property
    def by_this_ui(self) -> bool:
        """Made by this UI's own registry client (a delete or retag it also audits); see
        ``own.made_by_this_ui`` for why the user agent alone does not say so."""
        return made_by_this_ui(self.user_agent, self.actor)

    def describe(self) -> str:
        text = f"{self.action} {self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest[:19]}…"
        return text


@dataclass
class Result:
    outcome: str
    note: str = ""
    lag_ms: int | None = None


def _string(value: Any) -> str:
    """A field that should hold text: cleaned (``lib.untrusted``) if it does, "" if it holds
    anything else (a number, a list, an object)."""
    return clean_text(value) if isinstance(value, str) else ""


def _target(raw: Any) -> dict:
    target = raw.get("target") if isinstance(raw, dict) else None
    return target if isinstance(target, dict) else {}


def is_relevant(raw: Any) -> bool:
    """Cheap triage: only manifest pushes with a tag, OCI manifests pushed by digest only
    (which may be referrers) and deletes change what we show."""
    if not isinstance(raw, dict) or not isinstance(raw.get("target"), dict):
        return True  # let parse_event reject it
    action = _string(raw.get("action"))
    target = _target(raw)
    if action == "delete":
        return True
    if action != "push":
        return False  # pull, mount and anything newer
    media_type = _string(target.get("mediaType"))
    is_manifest = media_type in MANIFEST_TYPES or "/manifests/" in _string(target.get("url"))
    if _string(target.get("tag")):
        return is_manifest
    # Pushed by digest only: an index's platform images show nowhere until a tag points at
    # them (the tag's own event fetches them then), but an OCI manifest may name a
    # ``subject``: a referrer, which no tag will ever name. Docker's types cannot.
    return media_type in SUBJECT_TYPES


def parse_event(raw: Any) -> Event:
    """The fields we use, checked against the Distribution grammar; ``InvalidEvent`` if not.

    Names, tags and digests must match the grammar exactly (which leaves no room for NUL or
    surrogates); the id is free text, so it is cleaned; the time is unknown (None) when it is
    malformed, out of range, or further ahead of our clock than ``MAX_CLOCK_AHEAD``.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("an event is not a JSON object")
    event_id = _string(raw.get("id"))
    if not 0 < len(event_id) <= 100:
        raise InvalidEvent("an event has no usable id")
    target = raw.get("target")
    if not isinstance(target, dict):
        raise InvalidEvent(f"event {event_id} has no target")
    repository = target.get("repository")
    if not isinstance(repository, str) or not is_valid_name(repository):
        raise InvalidEvent(f"event {event_id} names no valid repository")
    tag = target.get("tag") or ""
    if not isinstance(tag, str) or (tag and not is_valid_tag(tag)):
        raise InvalidEvent(f"event {event_id} has an invalid tag")
    digest = target.get("digest") or ""
    if not isinstance(digest, str) or (digest and not is_valid_digest(digest)):
        raise InvalidEvent(f"event {event_id} has an invalid digest")
    action = _string(raw.get("action"))
    if action not in ("push", "delete"):
        raise InvalidEvent(f"event {event_id} has an unknown action")
    if action == "push" and not digest:
        raise InvalidEvent(f"push event {event_id} has no digest")
    timestamp = parse_timestamp(raw.get("timestamp"))
    if timestamp is not None and timestamp > timezone.now() + MAX_CLOCK_AHEAD:
        timestamp = None
    return Event(
        id=event_id,
        action=action,
        repository=repository,
        tag=tag,
        digest=digest,
        timestamp=timestamp,
        actor=_actor_name(raw),
        user_agent=_user_agent(raw),
    )


def _user_agent(raw: dict) -> str:
    request = raw.get("request")
    agent = request.get("useragent") if isinstance(request, dict) else None
    return clean_text(agent)[:300] if isinstance(agent, str) else ""


def _actor_name(raw: dict) -> str:
    actor = raw.get("actor")
    name = actor.get("name") if isinstance(actor, dict) else None
    return clean_text(name)[:150] if isinstance(name, str) else ""


class _BudgetedClient:
    """The registry calls the handler makes, refused once the delivery's budget is spent."""

    def __init__(self, client: RegistryClient, seconds: float) -> None:
        self._client = client
        self._deadline = time.monotonic() + seconds

    def _check(self) -> None:
        if time.monotonic() > self._deadline:
            raise RegistryError.from_code("TIMEOUT", detail="the delivery's time budget is spent")

    def head_manifest(self, name: str, reference: str):
        self._check()
        return self._client.head_manifest(name, reference)

    def get_manifest(self, name: str, reference: str):
        self._check()
        return self._client.get_manifest(name, reference)

    def get_blob(self, name: str, digest: str, **kwargs):
        self._check()
        return self._client.get_blob(name, digest, **kwargs)

    def list_tags(self, name: str):
        self._check()
        return self._client.list_tags(name)


class _StoredDigests:
    """``digest in known`` asked of the database, so that the fetcher skips stored children."""

    def __contains__(self, digest: object) -> bool:
        return Manifest.objects.filter(digest=digest).exists()


class Deferred(Exception):
    """The event cannot be finished now; the periodic sync will reconcile."""


@dataclass(frozen=True)
class _Referrer:
    """A manifest pushed by digest only that names a ``subject``: stored already
    (``manifest_id``) or just read from the registry (``raw``: media type and bytes)."""

    subject: str
    manifest_id: int | None = None
    raw: tuple[str, bytes] | None = None


class EventHandler:
    def __init__(self, client: RegistryClient, *, budget: float = DELIVERY_BUDGET) -> None:
        self.client = _BudgetedClient(client, budget)

    # -- one delivery -----------------------------------------------------------------------

    def handle_envelope(self, events: list[Any]) -> dict[str, int]:
        counts = dict.fromkeys((APPLIED, UNCHANGED, IGNORED, DUPLICATE, DEFERRED, REJECTED), 0)
        last, last_repository, deferred, rejected = "", "", None, ""
        for raw in events:
            if not is_relevant(raw):
                counts[IGNORED] += 1
                last, last_repository = _describe_raw(raw) + " (ignored)", _repository_of(raw)
                continue
            try:
                event = parse_event(raw)
            except InvalidEvent as exc:
                counts[REJECTED] += 1
                last, last_repository = f"rejected: {exc}", _repository_of(raw)
                log.warning("rejected a registry event: %s", exc)
                rejected = f"invalid event: {exc}"
                continue
            result = self.handle(event)
            counts[result.outcome] += 1
            note = f": {result.note}" if result.note else ""
            last, last_repository = f"{event.describe()} ({result.outcome}{note})", event.repository
            if result.outcome == DEFERRED:
                deferred = (f"{event.describe()}: {result.note}", event.repository)
            elif result.outcome == REJECTED:
                # No repository name here: this line is shown to all staff, while the event
                # list (which names it) is filtered by what each one may see.
                rejected = f"a {event.action} event the registry contradicts"
        now = timezone.now()
        fields: dict[str, Any] = {
            "last_received_at": now,
            "last_event": last[:400],
            "last_event_repository": last_repository[:255],
        }
        if deferred is not None:
            fields.update(
                last_deferred_at=now,
                last_deferred_reason=deferred[0][:400],
                last_deferred_repository=deferred[1][:255],
            )
        if rejected:
            fields.update(last_rejected_at=now, last_rejected_reason=rejected[:255])
        EventStats.bump({"received": len(events), **counts}, **fields)
        return counts

    def handle(self, event: Event) -> Result:
        started = time.monotonic()
        referrer: _Referrer | None = None
        failure: Exception | None = None
        if event.action == "push" and not event.tag:
            # Read before the event is recorded: a manifest that turns out to name no subject
            # is ignored as it was before, without a row.
            try:
                referrer = self._read_referrer(event)
            except Exception as exc:  # unknown whether it is a referrer: recorded as deferred
                failure = exc
            if referrer is None and failure is None:
                return Result(IGNORED)
        try:
            with transaction.atomic():
                record = ProcessedEvent.objects.create(
                    event_id=event.id,
                    timestamp=event.timestamp,
                    action=event.action,
                    repository=event.repository,
                    tag=event.tag,
                    digest=event.digest,
                )
        except IntegrityError:
            # Delivered before (the registry retries after a timeout with the same id).
            return Result(DUPLICATE)
        except DatabaseError as exc:
            # Checked fields cannot get here; if one still does, the event is refused alone
            # rather than failing the delivery (and every later event behind it).
            log.warning("could not record registry event %r: %s", event.id, exc)
            return Result(REJECTED, "the event could not be recorded")
        try:
            if failure is not None:
                raise failure
            if referrer is not None:
                result = self._push_referrer(event, referrer)
            elif event.action == "push":
                result = self._push(event)
            elif event.tag:
                result = self._delete_tag(event)
            elif event.digest:
                result = self._delete_digest(event)
            else:
                result = self._delete_repository(event)
        except (Deferred, RegistryError) as exc:
            result = Result(DEFERRED, str(exc))
        except Exception as exc:  # never fail the delivery: the sync reconciles
            log.exception("handling registry event %s failed", event.id)
            result = Result(DEFERRED, f"{type(exc).__name__}: {exc}")
        if result.outcome == DEFERRED:
            log.warning(
                "deferred registry event %s (%s): %s", event.id, event.describe(), result.note
            )
        ProcessedEvent.objects.filter(pk=record.pk).update(
            outcome=result.outcome,
            note=result.note[:255],
            lag_ms=result.lag_ms,
            handling_ms=int((time.monotonic() - started) * 1000),
        )
        if result.outcome == APPLIED and not event.by_this_ui and referrer is None:
            # A change made outside the UI: the UI's own deletes and retags are reported from
            # their audit entries (the event may arrive before the UI mirrored the change).
            # A referrer pushed by digest changes no tag: no webhook event type tells of it.
            emit(webhook_occurrence(event))
        return result

    # -- order ------------------------------------------------------------------------------

    def _newer_event_known(
        self, event: Event, *, tags: Iterable[str] = (), digest: str = ""
    ) -> bool:
        """A later event on the same tag or digest of this repository was already handled."""
        if event.timestamp is None:
            return True  # no time to compare: treat as ambiguous
        touching = Q()
        for name in {event.tag, *tags} - {""}:
            touching |= Q(tag=name)
        if digest or event.digest:
            touching |= Q(digest=digest or event.digest)
        if not touching:
            return False
        return (
            ProcessedEvent.objects.filter(
                repository=event.repository, timestamp__gt=event.timestamp
            )
            .exclude(event_id=event.id)
            # The registry contradicted those: they tell nothing about the tag's history.
            .exclude(outcome=ProcessedEvent.Outcome.REJECTED)
            .filter(touching)
            .exists()
        )

    @staticmethod
    def _seen_after(event: Event, names: Iterable[str] = ()) -> bool:
        """The UI recorded one of these tags after the event's time.

        What counts is what the UI itself observed: when it first saw the tag (an event, a
        sync) and when it saw it change. A tag imported by a sync carries its image's build
        time as ``changed_at``, which may be years old; ``first_seen_at`` is when we saw it,
        so an event dated before that is older than what we know.
        """
        if event.timestamp is None:
            return True
        after = event.timestamp
        return (
            Tag.objects.filter(repository__name=event.repository, name__in=list(names))
            .filter(Q(changed_at__gt=after) | Q(first_seen_at__gt=after))
            .exists()
        )

    def _current_digest(self, repository: str, tag: str) -> str | None:
        """What the registry says the tag points at now; None when the tag is gone."""
        try:
            return self.client.head_manifest(repository, tag).digest
        except RegistryError as exc:
            if exc.status == 404 and exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
                return None
            raise Deferred(f"could not ask the registry about {repository}:{tag}: {exc}") from exc

    def _has_repository(self, repository: str) -> bool:
        """Whether the registry knows the repository (its tags list is not ``NAME_UNKNOWN``)."""
        try:
            self.client.list_tags(repository)
        except RegistryError as exc:
            if exc.status == 404 and exc.code == "NAME_UNKNOWN":
                return False
            raise Deferred(f"could not ask the registry about {repository}: {exc}") from exc
        return True

    def _has_manifest(self, repository: str, digest: str) -> bool:
        """Whether the registry has this manifest in this repository (one HEAD)."""
        return self._current_digest(repository, digest) is not None

    # -- actions ----------------------------------------------------------------------------

    def _push(self, event: Event) -> Result:
        ambiguous = self._newer_event_known(event) or self._seen_after(event, [event.tag])
        if not ambiguous:
            when = _not_after_now(event.timestamp)
            return self._upsert(event, event.digest, when=when, pushed_at=when)
        if self._superseded(event):
            return Result(UNCHANGED, "out of order; superseded by a later event on this tag")
        # The registry sends a push event just before it links the tag, so a HEAD could race a
        # *fresh* event; that is why in-order events are trusted without one. A late event is
        # older than a change we already know of, whose tag link is long written.
        digest = self._current_digest(event.repository, event.tag)
        if digest is None:
            # A push never deletes: the tag's own delete event, or the sync, removes it.
            return Result(UNCHANGED, "out of order; the registry no longer has this tag")
        result = self._upsert(event, digest, when=timezone.now(), lag=False, confirmed=True)
        result.note = f"out of order; the registry says {digest[:19]}…"
        return result

    @staticmethod
    def _superseded(event: Event) -> bool:
        """A newer event on this tag was applied already (a cheap look before any HEAD; the
        write itself checks again under the clock's lock)."""
        if event.timestamp is None:
            return False
        return TagClock.objects.filter(
            repository=event.repository, tag=event.tag, event_time__gte=event.timestamp
        ).exists()

    def _upsert(
        self,
        event: Event,
        digest: str,
        *,
        when: datetime,
        lag: bool = True,
        confirmed: bool = False,
        pushed_at: datetime | None = None,
    ) -> Result:
        """Point ``event.tag`` at ``digest``, if no newer event on the tag was applied.

        ``confirmed``: the registry itself named the digest (a HEAD of the tag). Otherwise the
        digest is the event's word: a repository we do not know is created only once the
        registry shows the manifest in it (the GET that fetches a new manifest, else a HEAD).
        """
        known_repository = confirmed or Repository.objects.filter(name=event.repository).exists()
        manifest_id = Manifest.objects.filter(digest=digest).values_list("id", flat=True).first()
        if manifest_id is None:
            fetcher = ManifestFetcher(self.client, _StoredDigests())  # type: ignore[arg-type]
            try:
                fetched = fetcher.ensure(event.repository, digest)
            except RegistryError as exc:
                if exc.not_found:
                    return self._missing_manifest(event, known_repository)
                raise
            with transaction.atomic():
                ids = store_manifests(fetched)
            # A concurrent delivery may have stored it between our look and the fetch (the
            # fetcher then skips it): read its id back rather than trust our own batch.
            manifest_id = ids.get(digest) or manifest_ids([digest]).get(digest)
            if manifest_id is None:
                raise Deferred(f"manifest {digest[:19]}… was not stored")
        elif not known_repository and not self._has_manifest(event.repository, digest):
            return self._missing_manifest(event, known_repository)
        with transaction.atomic():
            if not TagClock.advance(event.repository, event.tag, event.timestamp):
                return Result(UNCHANGED, "superseded by a later event on this tag")
            repository, _ = Repository.objects.get_or_create(name=event.repository)
            changed = set_tag(repository, event.tag, manifest_id, when=when, pushed_at=pushed_at)
        if not changed:
            return Result(UNCHANGED)
        lag_ms = None
        if lag and event.timestamp is not None:
            elapsed_ms = int((timezone.now() - event.timestamp).total_seconds() * 1000)
            lag_ms = min(max(0, elapsed_ms), MAX_LAG_MS)
        return Result(APPLIED, f"tag → {digest[:19]}…", lag_ms=lag_ms)

    def _missing_manifest(self, event: Event, known_repository: bool) -> Result:
        """The registry has no such manifest in the event's repository: say why (one tags list
        when the repository is new to us)."""
        if not known_repository and not self._has_repository(event.repository):
            return Result(
                REJECTED, "the registry has no such repository: not creating it on an event"
            )
        # Gone already (e.g. the throw-away manifest of a tag delete on 2.8).
        return Result(UNCHANGED, "the manifest is no longer in the registry")

    # -- referrers pushed by digest only ------------------------------------------------------

    def _read_referrer(self, event: Event) -> _Referrer | None:
        """What a manifest pushed by digest only refers to; None when it names no subject
        (or is not in the registry any more: its delete event follows, or came first).

        A stored manifest is read from the database; otherwise one GET, checked against the
        digest and capped by the client, whose bytes the fetcher then uses (not fetched
        twice)."""
        stored = (
            Manifest.objects.filter(digest=event.digest).values_list("id", "subject_digest").first()
        )
        if stored is not None:
            manifest_id, subject = stored
            return _Referrer(subject, manifest_id=manifest_id) if subject else None
        try:
            ref, body = self.client.get_manifest(event.repository, event.digest)
        except RegistryError as exc:
            if exc.not_found:
                return None
            raise
        try:
            subject = parse_manifest(event.digest, ref.media_type, body).subject_digest
        except ManifestFormatError:
            return None  # nothing the sync could show either
        return _Referrer(subject, raw=(ref.media_type, body)) if subject else None

    def _push_referrer(self, event: Event, referrer: _Referrer) -> Result:
        """Store the referrer (with its documents: an SBOM's packages, a provenance) and link
        it to its image in the event's repository, as the sync links what the referrers API
        lists."""
        manifest_id = referrer.manifest_id
        if manifest_id is None:
            # The GET just now showed the manifest in this repository.
            fetcher = ManifestFetcher(self.client, _StoredDigests())  # type: ignore[arg-type]
            fetched = fetcher.ensure(event.repository, event.digest, raw=referrer.raw)
            with transaction.atomic():
                ids = store_manifests(fetched)
            manifest_id = ids.get(event.digest) or manifest_ids([event.digest]).get(event.digest)
            if manifest_id is None:
                raise Deferred(f"manifest {event.digest[:19]}… was not stored")
        elif not self._has_manifest(event.repository, event.digest):
            # Stored before (another repository, or an earlier delivery): the registry must
            # still have it here, or its delete came first.
            known = Repository.objects.filter(name=event.repository).exists()
            return self._missing_manifest(event, known)
        with transaction.atomic():
            repository, _ = Repository.objects.get_or_create(name=event.repository)
            added = link_referrers(repository, referrer.subject, [manifest_id], exact=False)
        if not added:
            return Result(UNCHANGED, f"already attached to {referrer.subject[:19]}…")
        return Result(APPLIED, f"attached to {referrer.subject[:19]}…")

    def _remove(self, event: Event, repository: Repository, names: Iterable[str]) -> int:
        """Remove these tags, each only if no newer event on it was applied (see TagClock)."""
        with transaction.atomic():
            # Sorted: two deliveries claiming overlapping tags lock them in the same order.
            due = [
                name
                for name in sorted(set(names))
                if TagClock.advance(event.repository, name, event.timestamp)
            ]
            return remove_tags(repository, due) if due else 0

    def _delete_tag(self, event: Event) -> Result:
        tag = (
            Tag.objects.select_related("repository", "manifest")
            .filter(repository__name=event.repository, name=event.tag)
            .first()
        )
        if tag is None:
            return Result(UNCHANGED)
        late = self._newer_event_known(event) or self._seen_after(event, [event.tag])
        # Never on the event's word alone: the registry must no longer have the tag.
        digest = self._current_digest(event.repository, event.tag)
        if digest is None:
            if not self._remove(event, tag.repository, [tag.name]):
                return Result(UNCHANGED, "superseded by a later event on this tag")
            note = "out of order; the registry confirms the tag is gone" if late else "tag removed"
            return Result(APPLIED, note)
        note = f"the registry says the tag still exists at {digest[:19]}…"
        if late:
            note = f"out of order; {note}"
        if digest != tag.manifest.digest:
            self._upsert(event, digest, when=timezone.now(), lag=False, confirmed=True)
            note += " (stored)"
        return Result(REJECTED, note)

    def _delete_digest(self, event: Event) -> Result:
        rows = list(
            Tag.objects.filter(
                repository__name=event.repository, manifest__digest=event.digest
            ).values_list("name", "changed_at")
        )
        linked = ApiReferrer.objects.filter(
            repository__name=event.repository, manifest__digest=event.digest
        ).exists()
        if not rows and not linked:
            return Result(UNCHANGED)  # also every blob delete: no tag points at a blob
        repository = Repository.objects.get(name=event.repository)
        names = [name for name, _ in rows]
        late = self._newer_event_known(event, tags=names, digest=event.digest)
        # Never on the event's word alone: the registry must no longer have the manifest.
        if self._has_manifest(event.repository, event.digest):
            note = "the registry still has this manifest"
            if late or self._seen_after(event, names):
                note = f"out of order; {note}: its tags are back"
            return Result(REJECTED, note)
        # Gone from the repository: so is its link as a referrer pushed by digest.
        unlinked = unlink_referrer(repository, event.digest) if linked else 0
        if not rows:
            return Result(APPLIED if unlinked else UNCHANGED, "referrer removed")
        if late:
            doubtful = set(names)
        else:
            doubtful = {
                name
                for name, changed in rows
                if event.timestamp is None or changed > event.timestamp
            }
        certain = [name for name in names if name not in doubtful]
        removed = self._remove(event, repository, certain) if certain else 0
        notes = []
        for name in sorted(doubtful):
            # The tag moved after this delete: believe the registry.
            digest = self._current_digest(event.repository, name)
            if digest is None:
                removed += self._remove(event, repository, [name])
            elif digest != event.digest:
                moved = Event(event.id, "push", event.repository, name, digest, None)
                self._upsert(moved, digest, when=timezone.now(), lag=False, confirmed=True)
                notes.append(f"{name} moved")
            else:
                notes.append(f"{name} is back")
        note = f"{removed} tag(s) removed" + (f"; {', '.join(notes)}" if notes else "")
        if unlinked:
            note += "; referrer removed"
        return Result(APPLIED if removed or notes or unlinked else UNCHANGED, note)

    def _delete_repository(self, event: Event) -> Result:
        """Registry 3.x can delete a whole repository; 2.8 never sends this."""
        try:
            self.client.list_tags(event.repository)
        except RegistryError as exc:
            if exc.code == "NAME_UNKNOWN" and exc.status == 404:
                deleted, _ = Repository.objects.filter(name=event.repository).delete()
                return Result(APPLIED if deleted else UNCHANGED, "repository removed")
            raise
        return Result(UNCHANGED, "the registry still lists the repository")


def webhook_occurrence(event: Event) -> Occurrence:
    """The outgoing webhook event for a registry event the handler applied."""
    data = {"repository": event.repository, "via": "registry", "actor": event.actor}
    if event.action == "push":
        return Occurrence(
            type="io.registryui.tag.pushed",
            repository=event.repository,
            subject=f"{event.repository}:{event.tag}" if event.tag else event.repository,
            data={**data, "tag": event.tag, "digest": event.digest},
            time=event.timestamp or timezone.now(),
        )
    if event.tag:
        return Occurrence(
            type="io.registryui.tag.deleted",
            repository=event.repository,
            subject=f"{event.repository}:{event.tag}",
            data={**data, "tag": event.tag, "digest": event.digest},
            time=event.timestamp or timezone.now(),
        )
    if event.digest:
        return Occurrence(
            type="io.registryui.image.deleted",
            repository=event.repository,
            subject=f"{event.repository}@{event.digest}",
            data={**data, "digest": event.digest},
            time=event.timestamp or timezone.now(),
        )
    return Occurrence(
        type="io.registryui.repository.deleted",
        repository=event.repository,
        subject=event.repository,
        data=data,
        time=event.timestamp or timezone.now(),
    )


def _not_after_now(timestamp: datetime | None) -> datetime:
    now = timezone.now()
    return now if timestamp is None or timestamp > now else timestamp


def _repository_of(raw: Any) -> str:
    # Anything that names no valid repository could still be a name to hide: keep it (cleaned).
    return _string(_target(raw).get("repository"))[:255]


def _describe_raw(raw: Any) -> str:
    if not isinstance(raw, dict):
        return "?"
    target = _target(raw)
    text = f"{_string(raw.get('action')) or '?'} {_string(target.get('repository'))[:255] or '?'}"
    if tag := _string(target.get("tag"))[:128]:
        text += f":{tag}"
    if media_type := _string(target.get("mediaType"))[:100]:
        text += f" [{media_type}]"
    return text[:300]
