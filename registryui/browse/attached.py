"""What the browse pages show about signatures, SBOMs, attestations, artifacts and lineage.

The graph itself is ``catalog.referrers`` (one repository, no resolver); here it meets the
user: referrers are only ever looked up inside a repository the resolver already let the
user see, and lineage across repositories goes through ``visible_tags``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from django.db.models import Case, IntegerField, QuerySet, Value, When

from registryui.catalog import referrers
from registryui.catalog.artifacts import (
    COSIGN_BUNDLE_ANNOTATION,
    COSIGN_CERTIFICATE_ANNOTATION,
    HELM_CONFIG,
    NOTATION_SIGNATURE,
    NOTATION_SIGNING_TIME,
    OCI_CREATED,
    WASM_CONFIG,
    Kind,
)
from registryui.catalog.models import (
    IndexChild,
    Layer,
    Manifest,
    Repository,
    SbomPackage,
    SyncRun,
    Tag,
)
from registryui.lib.untrusted import parse_timestamp, text
from registryui.teams.permissions import visible_tags

#: Lineage lists at most this many images each way.
LINEAGE_LIMIT = 50
#: Images built on this one that "used by" looks at, at most: a popular base's page lists
#: the first LINEAGE_LIMIT of their tags by name (then it says "and more"), and its cost is
#: that of reading these images' tags, whatever the size of the catalog.
USED_BY_SCAN = 4 * LINEAGE_LIMIT


# -- the tag list ---------------------------------------------------------------------------


def annotate_badges(repository: Repository, manifests: list[Manifest]) -> None:
    """Set ``manifest.badges`` ((Kind, count) pairs) on a page's images, in one pass."""
    counts = referrers.badge_counts(repository, {m.digest for m in manifests})
    for manifest in manifests:
        manifest.badges = _pairs(counts.get(manifest.digest, {}))


def _pairs(counts: dict[str, int]) -> list[tuple[Kind, int]]:
    return [(kind, counts[kind.value]) for kind in Kind.ordered() if counts.get(kind.value)]


# -- the tag and digest pages ---------------------------------------------------------------


@dataclass
class AttachedRow:
    """One referrer as the "Attached" section lists it."""

    entry: referrers.Attached
    facts: list[tuple[str, str]]

    @property
    def manifest(self) -> Manifest:
        return self.entry.manifest

    @property
    def created(self):
        """The image config's time, else the ``org.opencontainers.image.created`` annotation
        (cosign writes no time in its config; notation and oras write the annotation)."""
        if self.manifest.created:
            return self.manifest.created
        return parse_timestamp((self.manifest.annotations or {}).get(OCI_CREATED))


def _certificate_facts(pem: str) -> list[tuple[str, str]]:
    """The identity (SAN) and OIDC issuer of a Fulcio certificate, when it reads as one.

    The certificate is whatever the signer pushed: one that loads but whose extensions do not
    parse (malformed, duplicated) reads as unreadable, never as an error page."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        return _fulcio_facts(cert)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        return [("Certificate", "present, unreadable")]


def _fulcio_facts(cert: x509.Certificate) -> list[tuple[str, str]]:
    facts = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
        names += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
        if names:
            facts.append(("Identity", text(names[0])))
    except x509.ExtensionNotFound:
        pass
    for extension in cert.extensions:
        oid = extension.oid.dotted_string
        if oid in ("1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.1"):
            raw = getattr(extension.value, "value", b"")
            if oid.endswith(".8") and raw[:1] == b"\x0c":
                raw = raw[2:]  # a DER UTF8String with a short length
            facts.append(("Issuer", text(raw.decode("utf-8", errors="replace"))))
            break
    return facts


#: Layer annotations are read from a referrer's stored manifest only up to this size: a
#: page lists up to 100 referrers, and a pusher may make each a 4 MiB manifest.
FACTS_MAX_MANIFEST = 256 * 1024


def _layer_annotations(manifest: Manifest) -> list[dict[str, str]]:
    if manifest.size > FACTS_MAX_MANIFEST:
        return []
    try:
        document = json.loads(manifest.raw)
    except ValueError:
        return []
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list):
        return []
    return [
        {
            text(k): text(v)
            for k, v in (layer.get("annotations") or {}).items()
            if isinstance(v, str)
        }
        for layer in layers
        if isinstance(layer, dict) and isinstance(layer.get("annotations") or {}, dict)
    ]


def _facts(manifest: Manifest) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = []
    for notes in _layer_annotations(manifest)[:10]:
        if notes.get(COSIGN_CERTIFICATE_ANNOTATION):
            facts.extend(_certificate_facts(notes[COSIGN_CERTIFICATE_ANNOTATION]))
        elif "dev.cosignproject.cosign/signature" in notes and not notes.get("predicateType"):
            facts.append(("Key", "signed with a key (no certificate)"))
        if notes.get(COSIGN_BUNDLE_ANNOTATION):
            facts.append(("Transparency log", "entry included (bundle)"))
        if notes.get("predicateType"):
            facts.append(("Predicate", notes["predicateType"]))
    annotations = manifest.annotations or {}
    if manifest.artifact_type == NOTATION_SIGNATURE:
        signed = annotations.get(NOTATION_SIGNING_TIME) or annotations.get(OCI_CREATED)
        if signed:
            when = parse_timestamp(signed)
            facts.append(("Signing time", when.isoformat() if when else signed))
        thumbprints = annotations.get("io.cncf.notary.x509chain.thumbprint#S256")
        if thumbprints:
            facts.append(("Certificate chain (SHA-256)", thumbprints))
    elif annotations.get(OCI_CREATED):
        facts.append(("Created", annotations[OCI_CREATED]))
    return facts


def _load_raw(manifests: list[Manifest]) -> None:
    """Set ``raw`` on the listed referrers whose layers ``_facts`` reads (one query; the
    others keep it deferred: a repository may hold thousands of referrers of one image)."""
    wanted = {m.id for m in manifests if m.size <= FACTS_MAX_MANIFEST}
    if not wanted:
        return
    raws = dict(Manifest.objects.filter(id__in=wanted).values_list("id", "raw"))
    for m in manifests:
        if m.id in raws:
            m.raw = raws[m.id]


def attached_context(
    user, repository: Repository, manifest: Manifest, layers: list[Layer] | None = None
) -> dict[str, Any]:
    """The context of the "Attached", artifact and lineage sections of a tag/digest page.

    ``layers``: the image's layers when the page has read them already (their chains give
    the lineage without another query)."""
    state = referrers.referrers_api_state()
    api = state == SyncRun.ReferrersApi.ANSWERED
    entries = referrers.attached_to(repository, [manifest.digest], api=api).get(manifest.digest, [])
    listed = entries[: referrers.LISTED]
    _load_raw([entry.manifest for entry in listed])
    rows = [AttachedRow(entry, _facts(entry.manifest)) for entry in listed]
    subjects: list[str] = []
    held_subjects: set[str] = set()
    # Only what carries something (a cosign manifest's layers, a subject) can be attached.
    if manifest.attached_kinds or manifest.subject_digest:
        subjects = sorted(referrers.subjects_of(repository, manifest, api=api))
        held_subjects = set(
            Tag.objects.filter(repository=repository, manifest__digest__in=subjects).values_list(
                "manifest__digest", flat=True
            )
        )
    totals: dict[str, int] = {}
    for entry in entries:
        for kind, count in entry.kinds:
            totals[kind.value] = totals.get(kind.value, 0) + count
    context: dict[str, Any] = {
        "attached": rows,
        "attached_more": max(len(entries) - referrers.LISTED, 0),
        "attached_badges": _pairs(totals),
        "attached_to": [(digest, digest in held_subjects) for digest in subjects],
        "referrers_api": state,
        "referrers_api_states": SyncRun.ReferrersApi,
        "artifact": artifact_facts(manifest),
    }
    if not manifest.is_index and not context["artifact"] and manifest.top_chain:
        context.update(lineage(user, manifest, layers))
    return context


# -- artifacts ------------------------------------------------------------------------------


def artifact_facts(manifest: Manifest) -> dict[str, Any] | None:
    """What a non-image manifest is and holds, for the page; None for an ordinary image."""
    details = manifest.details or {}
    if not (manifest.artifact_type or manifest.attached_kinds or manifest.subject_digest):
        return None
    kinds = manifest.attached_kinds or {}
    label = "OCI artifact"
    if manifest.artifact_type == HELM_CONFIG:
        label = "Helm chart"
    elif manifest.artifact_type == WASM_CONFIG or "wasm" in manifest.artifact_type:
        label = "WebAssembly module"
    elif kinds:
        label = ", ".join(Kind(k).label for k in kinds if k in Kind.values)
    return {
        "label": label,
        "type": manifest.artifact_type,
        "chart": details.get("config") if manifest.artifact_type == HELM_CONFIG else None,
        "config": details.get("config") if manifest.artifact_type != HELM_CONFIG else None,
        "files": details.get("files") or [],
        "sbom": details.get("sbom"),
        "provenance": details.get("provenance"),
        "documents": details.get("documents") or [],
    }


# -- SBOM -----------------------------------------------------------------------------------


def sbom_packages(manifest: Manifest, query: str) -> QuerySet:
    packages = SbomPackage.objects.filter(manifest=manifest).order_by("position")
    if query:
        packages = packages.filter(name__icontains=query) | packages.filter(purl__icontains=query)
    return packages.only("name", "version", "licence", "purl")


# -- lineage --------------------------------------------------------------------------------


def lineage(user, manifest: Manifest, layers: list[Layer] | None = None) -> dict[str, Any]:
    """ "Built on" (the longest image whose layers begin this one's) and "used by" (images
    that begin with all of this one's layers and add more), as visible tags: index ranges on
    the chain columns, each read bounded (see ``_used_by``).

    "Built on" is one query: the bases are an ``IN`` probe on ``Manifest.top_chain`` (a
    subquery, which both SQLite and PostgreSQL run first, whatever their statistics) and the
    candidates are those bases' tags only, a handful to rank by depth and sort."""
    if layers is None:
        layers = list(Layer.objects.filter(manifest=manifest).order_by("position"))
    prefixes = [layer.chain for layer in layers[:-1] if layer.chain]
    built_on: list[Tag] = []
    if prefixes:
        # The longest base first: rank each candidate by how many layers it covers.
        depth = Case(
            *[When(manifest__top_chain=chain, then=Value(i)) for i, chain in enumerate(prefixes)],
            output_field=IntegerField(),
        )
        candidates = list(
            visible_tags(
                user,
                Tag.objects.filter(
                    manifest_id__in=Manifest.objects.filter(top_chain__in=prefixes).values("id")
                ),
            )
            .annotate(depth=depth)
            .select_related("repository")
            .only("name", "repository__name", "manifest_id")
            .order_by("-depth", "repository__name", "name")[:LINEAGE_LIMIT]
        )
        if candidates:
            deepest = candidates[0].depth
            built_on = [tag for tag in candidates if tag.depth == deepest]
    used_by = _used_by(user, manifest.top_chain)
    return {
        "built_on": built_on,
        "used_by": used_by[:LINEAGE_LIMIT],
        "used_by_more": len(used_by) > LINEAGE_LIMIT,
    }


def _used_by(user, top: str) -> list[Tag]:
    """Up to LINEAGE_LIMIT + 1 visible tags of images (and of their indexes) that hold ``top``
    below layers of their own, by name.

    Three short queries rather than one: the ids of at most USED_BY_SCAN images built on it
    (an index range on ``Layer.chain`` that stops there; as a subquery, SQLite ran it once per
    ``IN`` it appeared in), the indexes holding them, then their tags: an ``IN`` probe on
    ``Tag.manifest`` over a few hundred ids. A leaf image, whose top chain no other image
    holds, costs the first query only."""
    if not top:
        return []
    derived = list(
        Layer.objects.filter(chain=top)
        .exclude(manifest__top_chain=top)
        .order_by()
        .values_list("manifest_id", flat=True)[:USED_BY_SCAN]
    )
    if not derived:
        return []
    parents = IndexChild.objects.filter(child_id__in=derived).values_list("index_id", flat=True)
    ids = set(derived).union(parents)
    return list(
        visible_tags(user, Tag.objects.filter(manifest_id__in=sorted(ids)))
        .select_related("repository")
        .only("name", "repository__name")
        .order_by("repository__name", "name")[: LINEAGE_LIMIT + 1]
    )
