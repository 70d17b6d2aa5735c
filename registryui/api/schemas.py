"""The API's documents (pydantic schemas via django-ninja): what clients read and send.

Lists are ``{"items": [...], "next_cursor": "…" | null}``. Times are RFC 3339 or null when
unknown. Sizes are bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

# -- problems -------------------------------------------------------------------------------


class FieldError(Schema):
    field: str = Field(description="Where: query.sort, path.reference, body.tags.0, …")
    message: str


class ProblemOut(Schema):
    """RFC 9457 problem details, with a stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None

    model_config = {"extra": "allow"}


# -- catalog --------------------------------------------------------------------------------


class RepositoryOut(Schema):
    name: str
    namespace: str
    tag_count: int
    size: int = Field(description="Distinct bytes of the images its tags hold.")
    last_updated_at: datetime | None
    last_synced_at: datetime | None
    sync_failed: bool
    url: str = Field(description="The repository's page.")


class RepositoryPage(Schema):
    items: list[RepositoryOut]
    next_cursor: str | None


class TagOut(Schema):
    repository: str
    name: str
    digest: str
    media_type: str
    kind: str
    size: int
    created: datetime | None
    platforms: list[str]
    changed_at: datetime | None = Field(description="When the tag last moved, as synced.")
    first_seen: datetime | None = Field(
        description="When this UI first saw the tag (the age retention counts from)."
    )
    sync_problem: str
    url: str


class TagPage(Schema):
    items: list[TagOut]
    next_cursor: str | None


class LayerOut(Schema):
    digest: str
    size: int
    media_type: str


class PlatformOut(Schema):
    platform: str
    os: str
    architecture: str
    variant: str
    digest: str
    size: int
    created: datetime | None
    layers: list[LayerOut]


class AttestationOut(Schema):
    digest: str
    media_type: str


class ManifestOut(Schema):
    repository: str
    tag: str | None = Field(description="The tag asked for (null when asked by digest).")
    digest: str
    media_type: str
    kind: str
    size: int = Field(description="Bytes of the manifest document itself.")
    total_size: int = Field(description="Manifest, config and layers (all platforms).")
    created: datetime | None
    platforms: list[PlatformOut] = Field(description="One per image; an image has one.")
    attestations: list[AttestationOut]
    config_digest: str
    config: dict[str, Any] = Field(description="The image config's 'config' section.")
    labels: dict[str, str]
    tags: list[str] = Field(description="This repository's tags on this digest.")
    url: str


# -- search ---------------------------------------------------------------------------------


class SearchTag(Schema):
    repository: str
    tag: str
    digest: str
    url: str


class SearchManifest(Schema):
    repository: str
    digest: str
    kind: str
    platforms: str
    tags: list[str]
    label_key: str = ""
    label_value: str = ""
    url: str


class SearchOut(Schema):
    query: str
    exact: str | None = Field(description="The page of a reference the query names exactly.")
    repositories: list[str]
    more_repositories: bool
    tags: list[SearchTag]
    more_tags: bool
    digests: list[SearchManifest]
    more_digests: bool
    labels: list[SearchManifest]
    more_labels: bool
    notes: list[str]


# -- audit and sync -------------------------------------------------------------------------


class AuditOut(Schema):
    id: int
    created_at: datetime
    actor: str
    via: str
    action: str
    repository: str
    reference: str
    digest: str
    result: str
    message: str
    details: dict[str, Any]


class AuditPage(Schema):
    items: list[AuditOut]
    next_cursor: str | None


class SyncRunOut(Schema):
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    repositories_seen: int | None = Field(description="Only for who sees every repository.")
    repositories_synced: int | None
    repositories_failed: int | None
    tags_seen: int | None


class SyncOut(Schema):
    catalog_synced_at: datetime | None
    last_run_at: datetime | None
    stale: bool
    stale_after: int
    registry_unreachable: bool
    last_run_error: str | None = Field(description="Only for who sees every repository.")
    last_full_sync: SyncRunOut | None = Field(description="Staff only.")
    running: bool | None = Field(description="Staff only: a sync is running.")
    worker_alive: bool | None = Field(description="Staff only.")
    registry_reachable: bool | None = Field(description="Staff only, asked now.")


# -- actions --------------------------------------------------------------------------------

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
DIGEST_EXAMPLE = "sha256:" + "0" * 64
Digest = Field(pattern=DIGEST_PATTERN, examples=[DIGEST_EXAMPLE])


class RestoreOffer(Schema):
    tag: str
    digest: str


class OutcomeOut(Schema):
    kind: Literal["image", "tag"]
    reference: str
    digest: str
    result: str = Field(description="done, gone, changed, kept, refused, failed, skipped")
    message: str
    tags: list[str]
    restore: RestoreOffer | None = Field(
        None,
        description="A push landed on the tag while it was being deleted and could not be put "
        "back: POST /manifests/{repository}@{digest}/-/restore with {tag} puts it back.",
    )


class ExecutionOut(Schema):
    repository: str
    ok: bool
    deleted_tags: list[str]
    gone_tags: list[str]
    deleted_digests: list[str]
    freed_bytes: int = Field(description="Estimated; exact after garbage-collect.")
    error: str
    outcomes: list[OutcomeOut]


class Confirmed(Schema):
    tag: str = Field(min_length=1, max_length=128)
    digest: str = Digest


class BulkDeleteIn(Schema):
    tags: list[Confirmed] = Field(
        min_length=1,
        max_length=1000,
        description="Each tag with the digest it was seen at: a tag that moved is left alone.",
    )
    dry_run: bool = Field(False, description="Only say what would go.")


class PlanImage(Schema):
    digest: str
    tags: list[str]
    children: list[str]


class PlanTag(Schema):
    tag: str
    digest: str
    siblings: list[str] = Field(description="Tags that stay on the same digest.")


class PlanOut(Schema):
    repository: str
    images: list[PlanImage] = Field(description="Images deleted with all their tags.")
    tags: list[PlanTag] = Field(description="Tags removed alone (their image stays).")
    missing: list[str]
    freed_bytes: int


class TagsIn(Schema):
    tags: list[str] = Field(min_length=1, max_length=100, description="Tags to point here.")
    old_digests: dict[str, str] = Field(
        default_factory=dict,
        description="To move an existing tag: tag → the digest it points at now (as seen).",
    )


class RetagOut(Schema):
    tag: str
    status: str = Field(description="done, moved, unchanged, confirm, failed")
    message: str
    old_digest: str | None


class TagsOut(Schema):
    repository: str
    digest: str
    results: list[RetagOut]


class RestoreIn(Schema):
    tag: str = Field(min_length=1, max_length=128, description="The tag to put the image on.")


class RestoreOut(Schema):
    repository: str
    tag: str
    digest: str
    status: str = Field(description="done: the tag points at the digest (again).")
    message: str
    now_digest: str | None = Field(
        description="Where the tag points now when elsewhere (in the 409 ``changed`` problem)."
    )


class PolicyOut(Schema):
    id: int
    name: str
    description: str
    repository_pattern: str
    keep_last: int | None
    older_than_days: int | None
    keep_regex: str
    enabled: bool
    matching_repositories: int = Field(description="Of those you may delete in.")
    last_applied_at: datetime | None


class VerdictOut(Schema):
    tag: str
    digest: str
    delete: bool
    reasons: list[str]
    since: datetime | None


class PreviewRepository(Schema):
    repository: str
    verdicts: list[VerdictOut]


class PreviewOut(Schema):
    policy: PolicyOut
    fingerprint: str = Field(description="Pass it to apply: the run does exactly this list.")
    tag_count: int
    image_count: int
    unknown_age_count: int
    freed_bytes: int
    repositories: list[PreviewRepository]


class ApplyIn(Schema):
    fingerprint: str = Field(min_length=1, max_length=64)


class ApplyOut(Schema):
    policy: str
    deleted_tags: int
    freed_bytes: int
    failures: list[str]
    interrupted: bool
    summary: str
    executions: list[ExecutionOut]


DIGEST_RE = re.compile(DIGEST_PATTERN)
