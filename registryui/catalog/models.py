"""The database mirror of the registry: repositories, tags, manifests, layers and sync runs.

Manifests are content-addressed: a digest's manifest and config never change, so a row is
written once, when the digest is first seen, and never fetched again. Tags and repositories
are what change; the sync and the notification handler keep them in step with the registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from registryui.lib.iters import IN_CHUNK, chunked
from registryui.lib.natural import MAX_KEY_LENGTH, natural_key
from registryui.lib.reference import namespace_of, reference_url, short_digest
from registryui.registry import mediatypes

from .artifacts import is_attachment_tag


class Repository(models.Model):
    name = models.CharField(max_length=255, unique=True)
    #: The first path component (``team-a`` of ``team-a/api``); '' for a top-level name.
    namespace = models.CharField(max_length=255, blank=True, db_index=True)
    # Denormalised from the tags for fast sorting of big catalogs; see refresh_stats().
    tag_count = models.PositiveIntegerField(default=0)
    #: Compressed bytes of the distinct blobs its tags reference (layers, configs, manifests).
    size = models.BigIntegerField(default=0)
    #: When a tag last moved, as far as we know (see Tag.changed_at).
    last_updated_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    #: The last time a sync of this repository completed without error.
    last_synced_at = models.DateTimeField(null=True, blank=True)
    #: The error of the latest failed sync of this repository; cleared by a successful one.
    last_sync_error = models.TextField(blank=True)
    last_sync_error_at = models.DateTimeField(null=True, blank=True)
    #: The last time its tags were changed outside a full sync (a notification or a cleanup
    #: action). A sync's view of the repository taken before this moment is out of date and
    #: is not applied over it; the next sync reconciles.
    tags_changed_live_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "repositories"
        ordering = ["name"]
        indexes = [
            models.Index(fields=["namespace", "name"], name="repo_namespace_name"),
            models.Index(fields=["-last_updated_at", "name"], name="repo_updated"),
            models.Index(fields=["-size", "name"], name="repo_size"),
            models.Index(fields=["-tag_count", "name"], name="repo_tag_count"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.namespace = namespace_of(self.name)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reference_url(self.name)

    @property
    def sync_failed(self) -> bool:
        # Every write of last_synced_at clears the error (Syncer.store_snapshot, flush_touched).
        return bool(self.last_sync_error)

    def live_manifest_ids(self, tagged: set[int] | None = None) -> set[int]:
        """Manifests this repository holds through its tags, with the children of its indexes."""
        if tagged is None:
            tagged = set(self.tags.values_list("manifest_id", flat=True))
        children = set(
            IndexChild.objects.filter(index_id__in=tagged).values_list("child_id", flat=True)
        )
        return tagged | children

    def refresh_stats(self) -> None:
        """Recompute tag_count, size and last_updated_at from the tags, and the blobs the
        repository references (``catalog.storage.link_blobs``, which gives the size)."""
        # Same package, imported here because storage.py builds on this module's models.
        from .storage import link_blobs

        aggregate = self.tags.aggregate(count=models.Count("id"), last=models.Max("changed_at"))
        tagged = set(self.tags.values_list("manifest_id", flat=True))
        manifest_ids = self.live_manifest_ids(tagged)
        self.tag_count = aggregate["count"] or 0
        self.last_updated_at = aggregate["last"]
        self.size = link_blobs(self, manifest_ids, tagged)
        Repository.objects.filter(pk=self.pk).update(
            tag_count=self.tag_count, size=self.size, last_updated_at=self.last_updated_at
        )


def blob_sizes(manifest_ids: Iterable[int], only: set[str] | None = None) -> dict[str, int]:
    """digest → size of the blobs behind these manifests: each manifest itself, its config
    and its layers (blobs are stored once, however many manifests share them).

    ``only`` keeps just those digests (the caller knows which blobs it cares about).
    """
    blobs: dict[str, int] = {}
    for chunk in chunked(manifest_ids):
        rows = Manifest.objects.filter(id__in=chunk).values_list(
            "digest", "size", "config_digest", "config_size"
        )
        for digest, size, config_digest, config_size in rows:
            blobs[digest] = size
            if config_digest:
                blobs[config_digest] = config_size
        layers = Layer.objects.filter(manifest_id__in=chunk)
        if only is not None and len(only) <= IN_CHUNK:
            layers = layers.filter(digest__in=only)
        for digest, size in layers.values_list("digest", "size"):
            blobs[digest] = size
    if only is not None:
        blobs = {d: size for d, size in blobs.items() if d in only}
    return blobs


class Manifest(models.Model):
    """One manifest (an image or an index), keyed by digest, shared by every repository."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        INDEX = "index", "Index"
        OTHER = "other", "Other"

    digest = models.CharField(max_length=135, unique=True)
    media_type = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    #: The manifest's own bytes (it is a blob in registry storage too).
    size = models.PositiveIntegerField()
    #: Compressed size of what a pull downloads: config plus layers; for an index the sum of
    #: its platform images.
    total_size = models.BigIntegerField(default=0)
    raw = models.TextField(help_text="The manifest exactly as the registry served it.")
    config_digest = models.CharField(max_length=135, blank=True)
    config_media_type = models.CharField(max_length=255, blank=True)
    config_size = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    os = models.CharField(max_length=64, blank=True)
    architecture = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=64, blank=True)
    #: "linux/amd64" for an image; "linux/amd64, linux/arm64/v8" for an index.
    platforms = models.CharField(max_length=512, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    #: Entrypoint, Cmd, Env, ExposedPorts, WorkingDir, User, Volumes, StopSignal.
    config = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)
    #: The OCI 1.1 ``artifactType``, or the config media type when that is what types the
    #: artifact (a Helm chart, a WASM module); blank for a container image.
    artifact_type = models.CharField(max_length=255, blank=True)
    #: The digest the manifest's ``subject`` names (OCI 1.1 referrers); blank when none.
    subject_digest = models.CharField(max_length=135, blank=True, db_index=True)
    #: The manifest's own ``annotations``.
    annotations = models.JSONField(default=dict, blank=True)
    #: What this manifest carries when it is attached to another (see catalog.artifacts):
    #: kind → count, e.g. {"signature": 2} for a cosign ``.sig`` with two signatures.
    attached_kinds = models.JSONField(default=dict, blank=True)
    #: Facts read from an artifact's documents at sync time: a Helm chart's metadata, an
    #: SBOM's format and document name, a provenance's builder/source/parameters, files.
    details = models.JSONField(default=dict, blank=True)
    #: The chain of its top layer (``Layer.chain`` of the last layer; see catalog.lineage).
    top_chain = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["config_digest"], name="manifest_config_digest")]

    def __str__(self) -> str:
        return self.digest

    @property
    def short_digest(self) -> str:
        return short_digest(self.digest)

    @property
    def is_index(self) -> bool:
        return self.kind == self.Kind.INDEX

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def is_docker_format(self) -> bool:
        return self.media_type in (mediatypes.DOCKER_MANIFEST, mediatypes.DOCKER_MANIFEST_LIST)


class Layer(models.Model):
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="layers")
    position = models.PositiveSmallIntegerField()
    digest = models.CharField(max_length=135, db_index=True)
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=255, blank=True)
    #: Hash of the layer digests from the first one up to this one (see catalog.lineage):
    #: an image built on another has the other's top-layer chain at the same position.
    chain = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["manifest", "position"]
        constraints = [
            models.UniqueConstraint(fields=["manifest", "position"], name="layer_position_unique")
        ]

    def __str__(self) -> str:
        return self.digest


class IndexChild(models.Model):
    """A platform entry of an index (OCI image index or Docker manifest list)."""

    index = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="child_links")
    child = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="parent_links")
    position = models.PositiveSmallIntegerField()
    os = models.CharField(max_length=64, blank=True)
    architecture = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=64, blank=True)
    os_version = models.CharField(max_length=128, blank=True)
    #: BuildKit attestations ("unknown/unknown" with a reference annotation) are not platforms.
    is_attestation = models.BooleanField(default=False)

    class Meta:
        ordering = ["index", "position"]
        constraints = [
            models.UniqueConstraint(fields=["index", "position"], name="indexchild_position_unique")
        ]
        indexes = [models.Index(fields=["child"], name="indexchild_child")]

    def __str__(self) -> str:
        return f"{self.platform} {self.child_id}"

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


class Label(models.Model):
    """One config label, in its own table so that search can use an index on the value."""

    VALUE_MAX_LENGTH = 500

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="label_rows")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=VALUE_MAX_LENGTH)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["manifest", "key"], name="label_key_unique")]
        indexes = [
            # Search reads a prefix range of values in (value, id) order and stops at its
            # limit, however many labels share one value (browse.search._label_hits).
            models.Index(fields=["value", "id"], name="label_value_id"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class SbomPackage(models.Model):
    """One package of an SBOM, stored at sync time so that pages and search never read the
    document itself (which may be tens of megabytes)."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="packages")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=255, db_index=True)
    version = models.CharField(max_length=255, blank=True)
    licence = models.CharField(max_length=255, blank=True)
    purl = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["manifest", "position"]
        constraints = [
            models.UniqueConstraint(fields=["manifest", "position"], name="sbompackage_position")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()


class ApiReferrer(models.Model):
    """A referrer pushed by digest only: listed by the registry's referrers API
    (``GET /v2/<name>/referrers/<digest>``), or linked from its push notification.

    Referrers that have a tag (cosign's tag scheme, or a tagged manifest with a ``subject``)
    are found from the tags themselves; these rows hold the ones pushed by digest only, which
    no tag list shows. Registry 2.8 does not answer the API: there only the push notification
    (``events.handler``) makes these rows, and a sync cannot check them.
    """

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="+")
    subject_digest = models.CharField(max_length=135)
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="+")
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "subject_digest", "manifest"], name="apireferrer_unique"
            )
        ]
        indexes = [models.Index(fields=["manifest"], name="apireferrer_manifest")]

    def __str__(self) -> str:
        return f"{self.subject_digest} <- {self.manifest_id}"


class TagQuerySet(models.QuerySet):
    def with_pushed_by(self) -> TagQuerySet:
        """Annotate ``pushed_sort``: ``Tag.pushed_by`` in SQL, to order tag lists by push time."""
        return self.annotate(
            pushed_sort=Coalesce("pushed_at", Greatest("first_seen_at", "changed_at"))
        )

    def for_listing(self) -> TagQuerySet:
        return self.select_related("manifest").defer(
            "manifest__raw", "manifest__history", "manifest__config", "manifest__details"
        )

    def images(self) -> TagQuerySet:
        """Without signature, SBOM and attestation tags (``Tag.attached``)."""
        return self.filter(attached=False)

    def attachments(self) -> TagQuerySet:
        return self.filter(attached=True)


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="tags")
    first_seen_at = models.DateTimeField(default=timezone.now)
    #: When this row was created, by this server's clock: the time the UI first saw the tag.
    #: Only the model default sets it (sync, notifications and cleanup all create rows without
    #: naming it), so no registry time (a build date, an event's timestamp) ever ends up here.
    #: Retention counts a tag's age from it (see cleanup.retention); None means unknown.
    first_seen = models.DateTimeField(default=timezone.now, null=True, blank=True, editable=False)
    #: When the tag last moved to its current digest, as far as we know: the time we observed
    #: the change (or the push event's time); on first import, the image's build time.
    changed_at = models.DateTimeField(default=timezone.now)
    #: When the current digest was pushed onto this tag: the registry's push event's time,
    #: set only by the notification endpoint (issue 16). None when no push event was seen
    #: (the tag existed before the UI was installed, or a sync noticed the move): the push
    #: then happened no later than ``pushed_by`` ("before <first sync>"). Distinct from the
    #: image's build time (``Manifest.created``) and from ``changed_at``, which a first
    #: import sets to that build time.
    pushed_at = models.DateTimeField(null=True, blank=True)
    #: Why the last sync could not read this tag (its config blob is missing, its manifest
    #: answered 500, ...); the row keeps the digest it had, and the next sync tries again.
    #: Blank when the tag is in step with the registry.
    sync_problem = models.TextField(blank=True)
    #: ``lib.natural.natural_key(name)``: orders tags naturally (``build-2`` before
    #: ``build-10``) in the database. Written with the row (``save`` and ``catalog.store``).
    sort_key = models.CharField(max_length=MAX_KEY_LENGTH, blank=True, editable=False)
    #: ``Manifest.total_size`` of its manifest (what a pull downloads), denormalised so that
    #: the tags table sorts a big repository by size through an index, without the join.
    #: Manifests never change, so it changes only when the tag moves: written with the row
    #: (``save`` and ``catalog.store``).
    size = models.BigIntegerField(default=0, editable=False)
    #: ``catalog.artifacts.is_attachment_tag(name, manifest.subject_digest)``: the tag names a
    #: signature, SBOM, attestation or other artifact attached to an image (cosign's tag
    #: scheme, or a manifest with a ``subject``), which the tags table hides by default.
    #: Stored so that the page counts and lists a big repository's images through an index,
    #: without joining each tag to its manifest. It changes only when the name or the digest
    #: does: written with the row (``save`` and ``catalog.store``), like ``size``.
    attached = models.BooleanField(default=False, editable=False)

    objects = TagQuerySet.as_manager()

    class Meta:
        ordering = ["repository", "name"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="tag_repository_name")
        ]
        indexes = [
            # Search by tag prefix reads this in (name, repository) order and stops at its
            # limit, however many repositories have a tag of that name ("latest").
            models.Index(fields=["name", "repository"], name="tag_name_repository"),
            models.Index(fields=["repository", "-changed_at"], name="tag_repository_changed"),
            # A repository's attachments (``TagQuerySet.attachments``), newest first: what the
            # tags table counts to hide them (an index-only range). Partial: only attachment
            # rows are in it, so writing image tags (most of a sync) never touches it. The
            # image tags' own orders are the indexes above, filtered on ``attached``.
            models.Index(
                fields=["repository", "-changed_at"],
                name="tag_repository_attached",
                condition=Q(attached=True),
            ),
            models.Index(fields=["manifest", "repository"], name="tag_manifest_repository"),
            models.Index(fields=["repository", "sort_key", "name"], name="tag_repository_sort_key"),
            # The size sorts of the tags table, both directions with their tie-breakers.
            models.Index(
                fields=["repository", "size", "sort_key", "name"], name="tag_repository_size"
            ),
            models.Index(
                fields=["repository", "-size", "sort_key", "name"], name="tag_repository_size_desc"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}:{self.name}"

    def save(self, *args, **kwargs) -> None:
        self.sort_key = natural_key(self.name)
        update_fields = kwargs.get("update_fields")
        moved = update_fields is None or not {"manifest", "manifest_id"}.isdisjoint(update_fields)
        renamed = update_fields is None or "name" in update_fields
        if moved or renamed:
            size, subject_digest = self._image_facts()
            if moved:
                self.size = size
            self.attached = is_attachment_tag(self.name, subject_digest)
        if update_fields is not None:
            extra = {"sort_key"} if renamed else set()
            if moved:
                extra.add("size")
            if moved or renamed:
                extra.add("attached")
            kwargs["update_fields"] = {*update_fields, *extra}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reference_url(self.repository.name, tag=self.name)

    @property
    def pushed_by(self):
        """The push time if recorded, else the latest moment the push can have happened: when
        the UI first saw the tag, or saw it move (``changed_at``, once later than that)."""
        if self.pushed_at is not None:
            return self.pushed_at
        return max(self.first_seen_at, self.changed_at)

    @property
    def push_time_known(self) -> bool:
        return self.pushed_at is not None

    def _image_facts(self) -> tuple[int, str]:
        """Its manifest's ``total_size`` and ``subject_digest``: from the manifest the row
        holds, else one query."""
        field = self._meta.get_field("manifest")
        if field.is_cached(self):
            manifest = field.get_cached_value(self)
            if manifest is not None and manifest.pk == self.manifest_id:
                return manifest.total_size, manifest.subject_digest
        facts = (
            Manifest.objects.filter(pk=self.manifest_id)
            .values_list("total_size", "subject_digest")
            .first()
        )
        return facts or (0, "")


class SyncRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        #: The run stopped early or some repositories failed (see ``error`` and ``errors``).
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=32, default="command")
    #: Set when the run synced one repository (``--repository``), blank for a full sync.
    scope = models.CharField(max_length=255, blank=True)
    repositories_seen = models.PositiveIntegerField(default=0)
    repositories_synced = models.PositiveIntegerField(default=0)
    repositories_failed = models.PositiveIntegerField(default=0)
    repositories_removed = models.PositiveIntegerField(default=0)
    tags_seen = models.PositiveIntegerField(default=0)
    tags_added = models.PositiveIntegerField(default=0)
    tags_updated = models.PositiveIntegerField(default=0)
    tags_removed = models.PositiveIntegerField(default=0)
    manifests_fetched = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0)
    requests_by_kind = models.JSONField(default=dict, blank=True)
    #: A failure of the run as a whole (the catalog could not be listed, ...).
    error = models.TextField(blank=True)

    class ReferrersApi(models.TextChoices):
        UNKNOWN = "", "Not asked"
        ANSWERED = "answered", "Answered"
        #: Registry 2.8 answers 404: referrers pushed by digest only stay unknown.
        UNSUPPORTED = "unsupported", "Not supported"

    referrers_api = models.CharField(
        max_length=16, choices=ReferrersApi.choices, default=ReferrersApi.UNKNOWN, blank=True
    )

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"
        indexes = [
            models.Index(
                fields=["-finished_at"],
                name="syncrun_full_finished",
                condition=Q(scope=""),
            )
        ]

    def __str__(self) -> str:
        return f"Sync {self.started_at:%Y-%m-%d %H:%M:%S} ({self.get_status_display()})"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None

    @property
    def ok(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    def summary(self) -> str:
        """The one line a sync ends with (the command, the worker's log)."""
        seconds = self.duration.total_seconds() if self.duration else 0.0
        line = (
            f"sync {self.status}: {self.repositories_synced}/{self.repositories_seen} "
            f"repositories, {self.tags_seen} tags "
            f"(+{self.tags_added} ~{self.tags_updated} -{self.tags_removed}), "
            f"{self.repositories_removed} repositories removed, "
            f"{self.manifests_fetched} new manifests, {self.requests_made} requests, "
            f"{self.repositories_failed} failed, {seconds:.1f}s"
        )
        if self.error:
            line += f" — {self.error}"
        return line


class SyncRunError(models.Model):
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="errors")
    repository = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=64, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["run", "repository"]

    def __str__(self) -> str:
        return f"{self.repository or '(catalog)'}: {self.message}"


# -- storage insight (issue 16): blobs as the registry stores them, see catalog/storage.py ----


class Blob(models.Model):
    """One blob of registry storage (a manifest, a config or a layer), stored once however
    many repositories reference it. Kept by ``catalog.storage.link_blobs``."""

    class Kind(models.TextChoices):
        MANIFEST = "manifest", "Manifest"
        CONFIG = "config", "Config"
        LAYER = "layer", "Layer"

    digest = models.CharField(max_length=135, unique=True)
    size = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    #: For a manifest: what a pull of it downloads (``Manifest.total_size``).
    image_size = models.BigIntegerField(default=0)
    #: How many repositories reference it, and how many of their images use it (recounted
    #: from the links whenever a repository's links change).
    repository_count = models.PositiveIntegerField(default=0)
    image_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["repository_count"], name="blob_repository_count"),
            models.Index(fields=["kind", "-image_count"], name="blob_kind_images"),
            models.Index(fields=["kind", "-image_size"], name="blob_kind_image_size"),
        ]

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A blob a repository references through its tags (and the platform images of its
    tagged indexes): what garbage-collect keeps while the repository holds them."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="links")
    #: Images (manifests) of the repository that use the blob.
    images = models.PositiveIntegerField(default=0)
    #: For a manifest blob: a tag of the repository points at it.
    tagged = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="repositoryblob_unique")
        ]
        indexes = [models.Index(fields=["blob", "repository"], name="repositoryblob_blob")]

    def __str__(self) -> str:
        return f"{self.repository_id} {self.blob_id}"


class StorageSnapshot(models.Model):
    """Bytes of one scope after a sync, written only when they changed since the scope's
    previous row (a row holds until the next one). Thinned as rows age: one per day after
    ``DAYS_AT_FULL`` days, one per week after ``WEEKS_AT_DAILY`` weeks."""

    class Scope(models.TextChoices):
        REGISTRY = "registry", "Registry"
        NAMESPACE = "namespace", "Namespace"
        REPOSITORY = "repository", "Repository"

    class Resolution(models.TextChoices):
        SYNC = "sync", "Every sync"
        DAY = "day", "Daily"
        WEEK = "week", "Weekly"

    taken_at = models.DateTimeField(default=timezone.now)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    #: The namespace or repository name; '' for the registry.
    name = models.CharField(max_length=255, blank=True)
    bytes = models.BigIntegerField()
    #: Bytes no other scope of its kind references (what deleting it all would free).
    exclusive = models.BigIntegerField(default=0)
    resolution = models.CharField(max_length=8, choices=Resolution.choices, default=Resolution.SYNC)

    class Meta:
        ordering = ["scope", "name", "taken_at"]
        indexes = [
            models.Index(fields=["scope", "name", "taken_at"], name="snapshot_scope_time"),
            models.Index(fields=["resolution", "taken_at"], name="snapshot_resolution_time"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.name} {self.taken_at:%Y-%m-%d %H:%M}: {self.bytes}"
