"""Putting back an image that lost its tag to a delete it raced (the one-click restore).

When a push landed on a tag while Registry UI was deleting it, and putting the pushed image
back failed, the delete's audit entry offers ``{"restore": {"tag", "digest"}}`` and the result
page shows a button. Restoring PUTs that manifest's exact bytes (fetched by digest and checked:
an untagged manifest stays in the registry until garbage-collect) on the tag, only while the
tag has no other image: a tag pushed again since is never overwritten.
"""

from __future__ import annotations

from registryui.catalog import store
from registryui.catalog.fetch import ManifestFetcher
from registryui.catalog.models import Manifest, Repository
from registryui.catalog.upstream import get_client
from registryui.core.models import AuditEntry
from registryui.lib.reference import short_digest
from registryui.registry import RegistryError

from .messages import describe
from .outcomes import Actor, RetagStatus, Step
from .retag import RetagResult
from .untag import original_bytes


def offered(repository: Repository, tag: str, digest: str) -> bool:
    """True when a delete of this tag recorded that this image should be put back on it."""
    return AuditEntry.objects.filter(
        repository=repository.name,
        reference=tag,
        action=AuditEntry.Action.DELETE_TAG,
        details__restore__tag=tag,
        details__restore__digest=digest,
    ).exists()


def restore(repository: Repository, tag: str, digest: str, actor: Actor) -> RetagResult:
    client = get_client()
    name = repository.name
    details = {"restore": {"tag": tag, "digest": digest}}
    step = Step(AuditEntry.Action.RESTORE_TAG, name, tag, digest)
    try:
        try:
            now = client.head_manifest(name, tag).digest
        except RegistryError as exc:
            if not exc.missing:
                raise
            now = ""
        if now and now != digest:
            message = (
                f"{tag} now points at {short_digest(now)}: it was pushed again, so "
                f"{short_digest(digest)} was not put back on it. Nothing was changed."
            )
            step.audit(actor, RetagStatus.CONFIRM.audit_result, message, **details, now=now)
            return RetagResult(RetagStatus.CONFIRM, message, old_digest=now)
        if not now:
            body, media_type = original_bytes(client, name, digest)
            client.put_manifest(name, tag, body, media_type)
            now = client.head_manifest(name, tag).digest
            if now != digest:
                raise RegistryError(
                    f"After the upload {tag} serves {short_digest(now)}.", code="INVALID_RESPONSE"
                )
        manifest_id = Manifest.objects.filter(digest=digest).values_list("id", flat=True).first()
        if manifest_id is None:
            fetched = ManifestFetcher(client, set()).ensure(name, digest)
            manifest_id = store.store_manifests(fetched)[digest]
    except RegistryError as exc:
        message = describe(exc) + f" Look at {tag} to see whether it was put back."
        return RetagResult.report(
            actor, step, RetagStatus.FAILED, message, **details, code=exc.code
        )
    store.set_tag(repository, tag, manifest_id)
    message = f"{tag} points at {short_digest(digest)} again."
    return RetagResult.report(actor, step, RetagStatus.DONE, message, **details)
