"""Reading overviews and stars, always for repositories the resolver shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.utils.safestring import SafeString, mark_safe

from registryui.catalog.models import IndexChild, Manifest, Repository, Tag

from .markdown import render_markdown
from .models import RepositoryOverview, Star

#: The OCI annotation keys shown when nobody wrote an overview (in this order).
LABEL_KEYS = {
    "description": "org.opencontainers.image.description",
    "source": "org.opencontainers.image.source",
    "documentation": "org.opencontainers.image.documentation",
    "licenses": "org.opencontainers.image.licenses",
}
#: Tags looked at for labels: "latest" first, else the most recently changed ones.
LABEL_TAGS = 5


@dataclass
class ImageLabels:
    """The OCI labels of the image a repository's overview falls back to."""

    tag: str = ""
    description: str = ""
    source: str = ""
    documentation: str = ""
    licenses: str = ""

    def __bool__(self) -> bool:
        return bool(self.description or self.source or self.documentation or self.licenses)


@dataclass
class Overview:
    repository: Repository
    row: RepositoryOverview | None
    labels: ImageLabels = field(default_factory=ImageLabels)

    @property
    def description(self) -> str:
        return self.row.description if self.row else ""

    @property
    def readme_html(self) -> SafeString:
        # render_markdown's output went through the sanitizer: safe to mark.
        return mark_safe(render_markdown(self.row.readme)) if self.row else mark_safe("")  # noqa: S308

    @property
    def written(self) -> bool:
        return self.row is not None and not self.row.empty


def image_labels(repository: Repository) -> ImageLabels:
    """The OCI labels of ``latest`` (else the most recently changed tag) of ``repository``;
    for an index, of its first platform image that has any. Two or three queries."""
    tags = list(
        Tag.objects.filter(repository=repository)
        .order_by("-changed_at", "name")
        .values_list("name", "manifest_id")[:LABEL_TAGS]
    )
    latest = Tag.objects.filter(repository=repository, name="latest").values_list(
        "name", "manifest_id"
    )
    tags = list(latest) + [t for t in tags if t[0] != "latest"]
    if not tags:
        return ImageLabels()
    ids = [manifest_id for _, manifest_id in tags]
    labels = dict(Manifest.objects.filter(id__in=ids).values_list("id", "labels"))
    children: dict[int, list[int]] = {}
    for index_id, child_id in (
        IndexChild.objects.filter(index_id__in=ids, is_attestation=False)
        .order_by("index_id", "position")
        .values_list("index_id", "child_id")
    ):
        children.setdefault(index_id, []).append(child_id)
    child_labels = dict(
        Manifest.objects.filter(id__in=[c for cs in children.values() for c in cs]).values_list(
            "id", "labels"
        )
    )
    for name, manifest_id in tags:
        candidates = [labels.get(manifest_id) or {}] + [
            child_labels.get(c) or {} for c in children.get(manifest_id, [])
        ]
        for found in candidates:
            picked = {
                attr: str(found.get(key) or "")
                for attr, key in LABEL_KEYS.items()
                if isinstance(found, dict)
            }
            if any(picked.values()):
                return ImageLabels(tag=name, **picked)
    return ImageLabels()


def overview_of(repository: Repository) -> Overview:
    """The overview of a repository the caller has already checked the user may see."""
    row = RepositoryOverview.objects.filter(name=repository.name).first()
    overview = Overview(repository=repository, row=row)
    if not overview.written:
        overview.labels = image_labels(repository)
    return overview


def is_starred(user, name: str) -> bool:
    return bool(user.is_authenticated) and Star.objects.filter(user=user, name=name).exists()


def with_overview(user, repositories: QuerySet) -> QuerySet:
    """Annotate ``description`` and ``starred`` (this user's star) on a Repository queryset."""
    description = RepositoryOverview.objects.filter(name=OuterRef("name")).values("description")[:1]
    repositories = repositories.annotate(description=Subquery(description))
    if user.is_authenticated:
        return repositories.annotate(
            starred=Exists(Star.objects.filter(user=user, name=OuterRef("name")))
        )
    return repositories.annotate(starred=Value(False, output_field=BooleanField()))


def described_as(text: str) -> Q:
    """Repositories (a Q on ``name``) whose written description contains ``text``."""
    return Q(name__in=RepositoryOverview.objects.filter(description__icontains=text).values("name"))
