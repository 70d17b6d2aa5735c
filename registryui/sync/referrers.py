"""The sync's use of the referrers API (``GET /v2/<name>/referrers/<digest>``).

Referrers with a tag (cosign's scheme, or a tagged manifest with ``subject``) come in with the
tags. Those pushed by digest only show up nowhere but in this API, which registry 2.8 does not
answer (404; the spec forbids a 404 from a registry that has it). So one request first asks
whether the registry answers; only then is each tagged image asked, its referrers fetched like
any manifest, and ``ApiReferrer`` made exactly what the registry listed. The run records the
answer (``SyncRun.referrers_api``) so that pages can say whether untagged referrers can be
known at all.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from registryui.catalog.fetch import ManifestFetcher
from registryui.catalog.models import Repository, SyncRun, Tag
from registryui.catalog.referrers import link_referrers
from registryui.catalog.store import manifest_ids, store_manifests
from registryui.lib.reference import is_valid_digest
from registryui.registry import RegistryClient, RegistryError

log = logging.getLogger(__name__)


#: A registry found without the API is asked again after this long (an upgrade may add it);
#: in between, a re-sync makes no request for it.
RECHECK = timedelta(hours=24)


def probe(client: RegistryClient, names: list[str]) -> SyncRun.ReferrersApi:
    """Ask once, about any stored image: does the registry answer the referrers API?"""
    recently = SyncRun.objects.filter(
        referrers_api=SyncRun.ReferrersApi.UNSUPPORTED, started_at__gte=timezone.now() - RECHECK
    )
    if recently.exists():
        return SyncRun.ReferrersApi.UNSUPPORTED
    tag = (
        Tag.objects.filter(repository__name__in=names[:1000])
        .images()
        .select_related("repository", "manifest")
        .only("repository__name", "manifest__digest")
        .first()
    )
    if tag is None:
        return SyncRun.ReferrersApi.UNKNOWN
    try:
        client.list_referrers(tag.repository.name, tag.manifest.digest)
    except RegistryError as exc:
        if exc.status in (404, 405):
            return SyncRun.ReferrersApi.UNSUPPORTED
        return SyncRun.ReferrersApi.UNKNOWN
    return SyncRun.ReferrersApi.ANSWERED


def scan(
    client: RegistryClient, fetcher: ManifestFetcher, names: list[str], should_stop
) -> SyncRun.ReferrersApi:
    """Probe, then (when the API answers) record the referrers of each tagged image."""
    state = probe(client, names)
    if state != SyncRun.ReferrersApi.ANSWERED:
        return state
    for repository in Repository.objects.filter(name__in=names).only("id", "name"):
        if should_stop():
            break
        digests = set(
            Tag.objects.filter(repository=repository)
            .images()
            .values_list("manifest__digest", flat=True)
        )
        for digest in sorted(digests):
            try:
                scan_one(client, fetcher, repository, digest)
            except RegistryError as exc:
                # Rows stay as they were: an upstream failure never deletes synced data.
                log.warning("referrers of %s@%s: %s", repository.name, digest, exc)
    return state


def scan_one(
    client: RegistryClient, fetcher: ManifestFetcher, repository: Repository, digest: str
) -> None:
    listed = [
        entry["digest"]
        for entry in client.list_referrers(repository.name, digest)
        if isinstance(entry.get("digest"), str) and is_valid_digest(entry["digest"])
    ]
    fetched = []
    for referrer in listed:
        fetched.extend(fetcher.ensure(repository.name, referrer))
    with transaction.atomic():
        ids = store_manifests(fetched)
        fetcher.stored(ids)
        ids.update(manifest_ids(set(listed) - ids.keys()))
        link_referrers(repository, digest, {ids[d] for d in listed if d in ids}, exact=True)
