"""The graph of what is attached to which image, within one repository.

A referrer belongs to its subject in the same repository, linked in one of three ways
(``artifacts.Source``): a tagged manifest whose ``subject`` names the image, a tag of cosign's
scheme (``sha256-<hex>.sig`` names the image ``sha256:<hex>``), or a row the referrers API gave
(``ApiReferrer``: pushed by digest only, which no tag list shows). The first two follow the
tags, so the sync, notifications and cleanup keep them current by keeping the tags current.
``ApiReferrer`` rows are written here (``link_referrers``, ``unlink_referrer``) by the sync
(what the referrers API lists) and by the notification handler (a push by digest that names
a ``subject``, on any registry; its delete). No resolver here: callers pass repositories the
user may see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Q, Value

from .artifacts import Kind, Source, scheme_subject, scheme_tags
from .models import ApiReferrer, Manifest, Repository, SyncRun, Tag

#: Referrers listed per image on a page (an image with more says how many more).
LISTED = 100


@dataclass
class Attached:
    """One manifest attached to an image."""

    manifest: Manifest
    source: Source
    subject_digest: str
    tags: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[tuple[Kind, int]]:
        counts = self.manifest.attached_kinds or {}
        return [(kind, counts[kind.value]) for kind in Kind.ordered() if counts.get(kind.value)]

    @property
    def main_kind(self) -> Kind:
        kinds = self.kinds
        return kinds[0][0] if kinds else Kind.ARTIFACT


def _attached_tags(names: list[str], digests: set[str]) -> tuple[Q, Q]:
    """The two ways a tag holds something attached to these images: a cosign scheme name, or
    a manifest whose ``subject`` is one of them. Queried apart (each an index look-up): one OR
    across the join to manifests reads every tag of the repository. The manifests with these
    subjects are taken first, by their ``subject_digest`` index, as literal ids: as an ``IN
    (subquery)`` SQLite walked the repository's tags to test it (30 ms at 100,000 tags), and
    with none (most images) the tags are not queried at all."""
    subjects = list(
        Manifest.objects.filter(subject_digest__in=digests).values_list("id", flat=True)
    )
    return Q(name__in=names), Q(manifest_id__in=subjects)


def attached_to(
    repository: Repository, digests: Iterable[str], *, defer_raw: bool = True, api: bool = True
) -> dict[str, list[Attached]]:
    """subject digest → what is attached to it in ``repository`` (three indexed queries; two
    with ``api=False``, where the registry does not answer the referrers API)."""
    digests = set(digests)
    found: dict[str, dict[int, Attached]] = {}
    if not digests:
        return {}
    api = api or has_linked_referrers(repository)

    def add(subject: str, manifest: Manifest, source: Source, tag: str | None) -> None:
        if subject not in digests or subject == manifest.digest:
            return
        entry = found.setdefault(subject, {}).get(manifest.id)
        if entry is None:
            entry = found[subject][manifest.id] = Attached(manifest, source, subject)
        if tag and tag not in entry.tags:
            entry.tags.append(tag)

    deferred = ("manifest__raw", "manifest__history", "manifest__config")
    names = [name for digest in digests for name in scheme_tags(digest)]
    # Two index look-ups, merged in name order, not one OR across the join to manifests: that
    # read every tag of the repository (37 ms on PostgreSQL at 100,000 tags, on every tag page).
    found_tags: dict[int, Tag] = {}
    for condition in _attached_tags(names, digests):
        tags = Tag.objects.filter(repository=repository).filter(condition)
        tags = tags.select_related("manifest")
        if defer_raw:
            tags = tags.defer(*deferred)
        found_tags.update((tag.pk, tag) for tag in tags)
    for tag in sorted(found_tags.values(), key=lambda tag: tag.name):
        subject = tag.manifest.subject_digest
        if subject in digests:
            add(subject, tag.manifest, Source.SUBJECT, tag.name)
        named = scheme_subject(tag.name)
        if named:
            add(named, tag.manifest, Source.TAG_SCHEME, tag.name)
    if api:
        rows = ApiReferrer.objects.filter(repository=repository, subject_digest__in=digests)
        rows = rows.select_related("manifest").order_by("id")
        if defer_raw:
            rows = rows.defer(*deferred)
        for row in rows:
            add(row.subject_digest, row.manifest, Source.REFERRERS_API, None)
    return {subject: list(entries.values()) for subject, entries in found.items()}


def badge_counts(repository: Repository, digests: Iterable[str]) -> dict[str, dict[str, int]]:
    """subject digest → kind → count, for the tag list's badges: one query (the tags named by
    the cosign scheme, the tags on manifests with these subjects and the referrers API's rows,
    as a UNION ALL; each part an index look-up, never a scan of the repository's tags)."""
    digests = set(digests)
    if not digests:
        return {}
    names = [name for digest in digests for name in scheme_tags(digest)]
    columns = ("manifest_id", "label", "manifest__digest", "subject", "manifest__attached_kinds")

    def tags(condition: Q):
        return (
            Tag.objects.filter(repository=repository)
            .filter(condition)
            .annotate(label=F("name"), subject=F("manifest__subject_digest"))
            .order_by()
            .values_list(*columns)
        )

    # Two parts, not one OR: an OR across the join to manifests read every tag of the
    # repository (55 ms at 100,000 tags); a tag in both parts is counted once below.
    by_name, by_subject = (tags(condition) for condition in _attached_tags(names, digests))
    listed = (
        ApiReferrer.objects.filter(repository=repository, subject_digest__in=digests)
        .annotate(label=Value(""), subject=F("subject_digest"))
        .order_by()
        .values_list(*columns)
    )
    seen: set[tuple[str, int]] = set()
    counts: dict[str, dict[str, int]] = {}
    for manifest_id, name, digest, subject, kinds in by_name.union(by_subject, listed, all=True):
        if isinstance(kinds, str):  # a UNION's JSON comes back as text on some backends
            kinds = json.loads(kinds)
        for linked in {subject, scheme_subject(name or "")} & digests:
            if (linked, manifest_id) in seen or linked == digest:
                continue
            seen.add((linked, manifest_id))
            total = counts.setdefault(linked, {})
            for kind, n in (kinds or {Kind.ARTIFACT.value: 1}).items():
                if kind in Kind.values and isinstance(n, int):
                    total[kind] = total.get(kind, 0) + n
    return counts


def subjects_of(repository: Repository, manifest: Manifest, *, api: bool = True) -> set[str]:
    """The images this manifest is attached to in ``repository`` (by any of the three ways)."""
    api = api or has_linked_referrers(repository)
    subjects = set()
    if manifest.subject_digest:
        subjects.add(manifest.subject_digest)
    for name in Tag.objects.filter(repository=repository, manifest=manifest).values_list(
        "name", flat=True
    ):
        named = scheme_subject(name)
        if named:
            subjects.add(named)
    if api:
        subjects.update(
            ApiReferrer.objects.filter(repository=repository, manifest=manifest).values_list(
                "subject_digest", flat=True
            )
        )
    return subjects


def referrers_api_state() -> SyncRun.ReferrersApi:
    """What the latest sync learnt about the registry's referrers API."""
    value = (
        SyncRun.objects.exclude(referrers_api="")
        .order_by("-started_at")
        .values_list("referrers_api", flat=True)
        .first()
    )
    return SyncRun.ReferrersApi(value or "")


def is_api_referrer(repository: Repository, manifest: Manifest) -> bool:
    return ApiReferrer.objects.filter(repository=repository, manifest=manifest).exists()


def has_attached_q(kind: Kind) -> Q:
    """Tags whose image has something of ``kind`` attached in the tag's repository, by any of
    the three links; each an indexed probe per tag (``tag_repository_name``, the subject
    index, ``apireferrer_unique``)."""
    from django.db.models import Exists, OuterRef, Value
    from django.db.models.functions import Concat, Substr

    digest = OuterRef("manifest__digest")
    suffixes = {
        Kind.SIGNATURE: [".sig"],
        Kind.SBOM: [".sbom", ".att"],
        Kind.PROVENANCE: [".att"],
        Kind.ATTESTATION: [".att"],
        Kind.ARTIFACT: [],
    }[kind]
    scheme = Q()
    for suffix in suffixes:
        scheme |= Q(
            Exists(
                Tag.objects.filter(
                    repository_id=OuterRef("repository_id"),
                    name=Concat(Value("sha256-"), Substr(digest, 8), Value(suffix)),
                    manifest__attached_kinds__has_key=kind.value,
                )
            )
        )
    by_subject = Exists(
        Tag.objects.filter(
            repository_id=OuterRef("repository_id"),
            manifest__subject_digest=digest,
            manifest__attached_kinds__has_key=kind.value,
        )
    )
    by_api = Exists(
        ApiReferrer.objects.filter(
            repository_id=OuterRef("repository_id"),
            subject_digest=digest,
            manifest__attached_kinds__has_key=kind.value,
        )
    )
    return scheme | Q(by_subject) | Q(by_api)


def attachment_links(manifest_ids: Iterable[int]) -> set[tuple[int, int, str]]:
    """(manifest id, repository id, image digest) for each place these referrer manifests
    are attached: a referrer counts only in the repository it is linked in."""
    ids = set(manifest_ids)
    subjects = dict(
        Manifest.objects.filter(id__in=ids)
        .exclude(subject_digest="")
        .values_list("id", "subject_digest")
    )
    links: set[tuple[int, int, str]] = set()
    rows = Tag.objects.filter(manifest_id__in=ids).values_list(
        "manifest_id", "repository_id", "name"
    )
    for pk, repository_id, name in rows:
        subject = scheme_subject(name) or subjects.get(pk)
        if subject:
            links.add((pk, repository_id, subject))
    rows = ApiReferrer.objects.filter(manifest_id__in=ids).values_list(
        "manifest_id", "repository_id", "subject_digest"
    )
    links.update(rows)
    return links


# -- writes: referrers pushed by digest only ------------------------------------------------


def has_linked_referrers(repository: Repository) -> bool:
    """Whether any referrer pushed by digest only is linked in ``repository``.

    Callers pass ``api=False`` where the registry does not answer the referrers API, to skip
    reading rows that only that API would give; but push notifications link such referrers on
    any registry (registry 2.8 included), so the rows are read whenever there are any."""
    return ApiReferrer.objects.filter(repository=repository).exists()


def link_referrers(
    repository: Repository, subject_digest: str, manifest_ids: Iterable[int], *, exact: bool
) -> int:
    """Link these stored manifests to the image ``subject_digest`` in ``repository`` as
    referrers pushed by digest only (``ApiReferrer`` rows); the number of new links.

    ``exact``: the referrers API's answer for the image, so its rows become exactly these
    (the sync); otherwise the manifests are added to what is linked (a push notification
    names one referrer at a time)."""
    wanted = set(manifest_ids)
    with transaction.atomic():
        rows = ApiReferrer.objects.filter(repository=repository, subject_digest=subject_digest)
        if exact:
            rows.exclude(manifest_id__in=wanted).delete()
        new = wanted - set(rows.values_list("manifest_id", flat=True))
        ApiReferrer.objects.bulk_create(
            [
                ApiReferrer(repository=repository, subject_digest=subject_digest, manifest_id=pk)
                for pk in sorted(new)
            ],
            ignore_conflicts=True,  # a concurrent writer linked it first
        )
    return len(new)


def unlink_referrer(repository: Repository, digest: str) -> int:
    """Forget the manifest ``digest`` as a referrer pushed by digest in ``repository`` (the
    registry deleted it there); the number of links removed. Its ``Manifest`` row stays
    (content-addressed: other repositories may hold the same bytes)."""
    removed, _ = ApiReferrer.objects.filter(repository=repository, manifest__digest=digest).delete()
    return removed
