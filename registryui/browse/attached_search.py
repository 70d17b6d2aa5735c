"""Search by what is attached to images: ``signed:yes``, ``signed:no``, ``has:sbom`` (also
``has:provenance``, ``has:attestation``) and a package name inside an SBOM (``openssl``).

Filters give image tags (signature/attestation tags themselves are left out) in repositories
the user may see, in the ``tag_name_repository`` index's order up to a limit; each tag costs a
few indexed probes (``catalog.referrers.has_attached_q``). Package names match by prefix on
``SbomPackage.name`` (indexed), and lead to the images the SBOMs are attached to, again only
through visible tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from registryui.catalog.artifacts import Kind
from registryui.catalog.models import SbomPackage, Tag
from registryui.catalog.referrers import attachment_links, has_attached_q
from registryui.teams.permissions import visible_tags

from . import search as _search

FILTERS: dict[str, tuple[Kind, bool]] = {
    "signed:yes": (Kind.SIGNATURE, True),
    "signed:no": (Kind.SIGNATURE, False),
    "has:sbom": (Kind.SBOM, True),
    "has:provenance": (Kind.PROVENANCE, True),
    "has:attestation": (Kind.ATTESTATION, True),
}
#: SBOM package rows read per search at most.
PACKAGE_ROWS = 500


@dataclass
class PackageHit:
    tag: Tag
    package: str
    version: str


@dataclass
class AttachedResults:
    #: The filter's description ("signed images"), or "" for a package search.
    filter_label: str = ""
    tags: list[Tag] = field(default_factory=list)
    more: bool = False
    packages: list[PackageHit] = field(default_factory=list)
    more_packages: bool = False

    @property
    def count(self) -> int:
        return len(self.tags) + len(self.packages)


def is_filter(query: str) -> bool:
    return query.strip().lower() in FILTERS


def _listing(queryset):
    return queryset.select_related("repository", "manifest").only(
        "name",
        "repository_id",
        "changed_at",
        "repository__name",
        "manifest__digest",
        "manifest__total_size",
        "manifest__platforms",
    )


def search_attached(user, query: str) -> AttachedResults:
    results = AttachedResults()
    key = query.strip().lower()
    if key in FILTERS:
        kind, present = FILTERS[key]
        results.filter_label = (
            f"images {'with' if present else 'without'} {kind.label.lower()}"
            if kind is not Kind.SIGNATURE
            else ("signed images" if present else "unsigned images")
        )
        condition = has_attached_q(kind)
        tags = visible_tags(user, Tag.objects.images()).filter(condition if present else ~condition)
        found = list(_listing(tags).order_by("name", "repository_id")[: _search.LIMIT + 1])
        results.tags = sorted(found[: _search.LIMIT], key=lambda t: (t.repository.name, t.name))
        results.more = len(found) > _search.LIMIT
        return results
    if not query or len(query) > 255:
        return results
    rows = list(
        SbomPackage.objects.filter(_search.prefix_q("name", query))
        .order_by("name", "manifest_id")
        .values_list("manifest_id", "name", "version")[:PACKAGE_ROWS]
    )
    if not rows:
        return results
    packages: dict[int, tuple[str, str]] = {}
    for manifest_id, name, version in rows:
        packages.setdefault(manifest_id, (name, version))
    # A referrer belongs to its repository: an SBOM in a repository the user may not see
    # says nothing about the same digest tagged elsewhere.
    by_place: dict[tuple[int, str], tuple[str, str]] = {}
    for manifest_id, repository_id, digest in attachment_links(packages):
        by_place.setdefault((repository_id, digest), packages[manifest_id])
    if not by_place:
        return results
    where = Q()
    for repository_id, digest in by_place:
        where |= Q(repository_id=repository_id, manifest__digest=digest)
    tags = visible_tags(user, Tag.objects.images().filter(where))
    found = list(_listing(tags).order_by("repository__name", "name")[: _search.LIMIT + 1])
    hits = []
    for tag in found:
        name, version = by_place[(tag.repository_id, tag.manifest.digest)]
        hits.append(PackageHit(tag, name, version))
    results.packages = hits[: _search.LIMIT]
    results.more_packages = len(found) > _search.LIMIT or len(rows) == PACKAGE_ROWS
    return results
