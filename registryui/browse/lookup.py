"""From a URL's reference (``team-a/api:1.4``, ``team-a/api@sha256:…``) to database rows.

Shared by the browse views and every action on a reference (delete, retag, ...), so that all
of them validate the grammar the same way (400), hide what the user may not see (404) and
refuse what the user may not do (403) before anything reaches the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from registryui.catalog.models import Manifest, Repository, Tag
from registryui.catalog.referrers import is_api_referrer
from registryui.lib.reference import BadReference, InvalidReference, Reference, parse_reference
from registryui.teams.models import Level
from registryui.teams.permissions import get_repository_or_404


@dataclass
class Resolved:
    reference: Reference
    repository: Repository
    tag: Tag | None = None
    manifest: Manifest | None = None


def parse_url_reference(text: str) -> Reference:
    """A reference from a URL path: no registry host, at most one of tag and digest."""
    try:
        reference = parse_reference(text, allow_domain=False)
    except InvalidReference as exc:
        raise BadReference(str(exc)) from exc
    if reference.tag and reference.digest:
        raise BadReference("Use either :tag or @digest in the URL, not both.")
    return reference


def resolve(user, text: str, action: int = Level.VIEW) -> Resolved:
    """Parse (400), check access (404 hidden / 403 not allowed) and find the rows (404)."""
    reference = parse_url_reference(text)
    repository = get_repository_or_404(user, reference.name, action)
    resolved = Resolved(reference=reference, repository=repository)
    if reference.tag:
        tag = (
            Tag.objects.select_related("manifest")
            .filter(repository=repository, name=reference.tag)
            .first()
        )
        if tag is None:
            raise Http404(f"{repository.name} has no tag {reference.tag}.")
        resolved.tag, resolved.manifest = tag, tag.manifest
    elif reference.digest:
        manifest = Manifest.objects.filter(digest=reference.digest).first()
        if manifest is None or not _held_by(repository, manifest):
            raise Http404(f"{repository.name} has no manifest {reference.digest}.")
        resolved.manifest = manifest
    return resolved


def _held_by(repository: Repository, manifest: Manifest) -> bool:
    """True when a tag of the repository is this manifest or an index that lists it, or the
    referrers API listed it in this repository (a referrer pushed by digest only)."""
    if Tag.objects.filter(repository=repository, manifest=manifest).exists():
        return True
    if Tag.objects.filter(repository=repository, manifest__child_links__child=manifest).exists():
        return True
    return is_api_referrer(repository, manifest)
