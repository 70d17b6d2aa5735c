"""Reading overviews and stars, always for repositories the resolver shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.utils.safestring import SafeString, mark_safe

from registryui.catalog.models import IndexChild, Repository, Tag

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
    #: Whether the user looking starred it.
    starred: bool = False
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


def _picked(labels) -> dict[str, str]:
    if not isinstance(labels, dict):
        return {}
    return {attr: str(labels.get(key) or "") for attr, key in LABEL_KEYS.items()}


def image_labels(repository: Repository) -> ImageLabels:
    """The OCI labels of ``latest`` (else the most recently changed tag) of ``repository``;
    for an index, of its first platform image that has any. Two index look-ups (``latest`` by
    name, the newest tags in ``changed_at`` order), a third for an index; never one per tag,
    never a sort of all of them."""
    tags = Tag.objects.filter(repository=repository)
    columns = ("name", "manifest_id", "manifest__labels")
    # One row at most ((repository, name) is unique); the LIMIT says so to PostgreSQL, which
    # otherwise estimates ~one "latest" per repository here and starts a parallel worker.
    latest = list(tags.filter(name="latest").values_list(*columns)[:1])
    newest = tags.exclude(name="latest").order_by("-changed_at").values_list(*columns)
    tags = latest + list(newest[: LABEL_TAGS - len(latest)])
    for name, _, labels in tags:
        picked = _picked(labels)
        if any(picked.values()):
            return ImageLabels(tag=name, **picked)
    # Indexes carry no config: their platform images hold the labels.
    ids = [manifest_id for _, manifest_id, _ in tags]
    children: dict[int, list[dict]] = {}
    for index_id, labels in (
        IndexChild.objects.filter(index_id__in=ids, is_attestation=False)
        .order_by("index_id", "position")
        .values_list("index_id", "child__labels")
    ):
        children.setdefault(index_id, []).append(labels)
    for name, manifest_id, _ in tags:
        for labels in children.get(manifest_id, []):
            picked = _picked(labels)
            if any(picked.values()):
                return ImageLabels(tag=name, **picked)
    return ImageLabels()


def overview_of(repository: Repository, user=None) -> Overview:
    """The overview of a repository the caller has already checked the user may see, with
    whether ``user`` starred it: one query for both answers, one more for a written overview
    or for the image labels shown instead (the repository page's budget of queries)."""
    starred: Any = Value(False, output_field=BooleanField())
    if user is not None and user.is_authenticated:
        starred = Exists(Star.objects.filter(user=user, name=OuterRef("name")))
    written = RepositoryOverview.objects.filter(name=OuterRef("name")).values("pk")[:1]
    found = (
        Repository.objects.filter(pk=repository.pk)
        .annotate(overview_pk=Subquery(written), by_user=starred)
        .values_list("overview_pk", "by_user")
        .first()
    )
    overview_pk, by_user = found or (None, False)
    row = None
    if overview_pk is not None:
        row = RepositoryOverview.objects.select_related("updated_by").get(pk=overview_pk)
    overview = Overview(repository=repository, row=row, starred=bool(by_user))
    if not overview.written:
        overview.labels = image_labels(repository)
    return overview


def _with_description(repositories: QuerySet) -> QuerySet:
    description = RepositoryOverview.objects.filter(name=OuterRef("name")).values("description")[:1]
    return repositories.annotate(description=Subquery(description))


def with_overview(user, repositories: QuerySet) -> QuerySet:
    """Annotate ``description`` and ``starred`` (this user's star) on a Repository queryset."""
    repositories = _with_description(repositories)
    if user.is_authenticated:
        return repositories.annotate(
            starred=Exists(Star.objects.filter(user=user, name=OuterRef("name")))
        )
    return repositories.annotate(starred=Value(False, output_field=BooleanField()))


class StarredFirst:
    """A repository list for a Paginator: the user's starred repositories first, then the
    rest, each part in ``ordering``; rows carry ``description`` and ``starred``.

    One ``ORDER BY starred DESC, …`` would test the star of, and sort, every repository the
    user may see (20,000 at a million tags) to show 50. Here the starred rows (a user's few)
    are one query, and the rest walk the ordering's index and stop at the page's end.
    """

    def __init__(
        self, user, repositories: QuerySet, ordering: tuple[Any, ...], *, only_starred: bool
    ) -> None:
        # The names as literals: an ``IN (subquery)`` lets SQLite walk the ordering's index
        # through every visible row to test each against the stars.
        stars = (
            list(Star.objects.filter(user=user).values_list("name", flat=True))
            if user.is_authenticated
            else []
        )
        starred = repositories.filter(name__in=stars) if stars else repositories.none()
        rest = repositories.none() if only_starred else repositories.exclude(name__in=stars)
        self._all = starred if only_starred else repositories
        self._starred = _with_description(starred).annotate(starred=Value(True)).order_by(*ordering)
        self._rest = _with_description(rest).annotate(starred=Value(False)).order_by(*ordering)

    def count(self) -> int:
        return self._all.count()

    def __getitem__(self, window: slice) -> list[Repository]:
        start, stop = window.start or 0, window.stop
        starred = list(self._starred[:stop])
        rows = starred[start:]
        if len(starred) < stop:  # every starred row is in hand: the rest follow them
            skip = max(start - len(starred), 0)
            rows += self._rest[skip : stop - len(starred)]
        return rows


def described_as(text: str) -> Q:
    """Repositories (a Q on ``name``) whose written description contains ``text``."""
    return Q(name__in=RepositoryOverview.objects.filter(description__icontains=text).values("name"))
