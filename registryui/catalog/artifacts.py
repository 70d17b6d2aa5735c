"""What a manifest is when it is not a container image: signatures, SBOMs, attestations and
other OCI artifacts, and the documents they carry (no database access here).

Tools write them in two ways. OCI 1.1 referrers (cosign 3, notation, ``oras attach``) name
the image in ``subject`` and say what they are in ``artifactType``. Cosign's tag scheme
(cosign 1-2, and every tool's fallback on registries without the referrers API) tags them
``sha256-<hex of the image digest>.sig`` / ``.att`` / ``.sbom`` in the image's repository:
one manifest whose layers are the signatures (``application/vnd.dev.cosign.simplesigning.v1+json``
with the signature in the ``dev.cosignproject.cosign/signature`` annotation) or attestations
(in-toto statements in DSSE envelopes, ``application/vnd.dsse.envelope.v1+json``, typed by a
``predicateType`` annotation).

Everything here reads documents a pusher wrote: text goes through ``lib.untrusted``, sizes
and counts are capped, and a document of an unexpected shape gives empty facts, never an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models

from registryui.lib.untrusted import clean_json, text

COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
NOTATION_SIGNING_TIME = "io.cncf.notary.signingTime"
OCI_CREATED = "org.opencontainers.image.created"
OCI_TITLE = "org.opencontainers.image.title"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
SPDX_TYPES = frozenset({"text/spdx+json", "application/spdx+json"})
CYCLONEDX_TYPES = frozenset({"application/vnd.cyclonedx+json"})
SBOM_TYPES = SPDX_TYPES | CYCLONEDX_TYPES

#: Configs that are not what an artifact is, so they do not type it.
_NEUTRAL_CONFIGS = frozenset(
    {
        OCI_EMPTY,
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.unknown.config.v1+json",
    }
)
#: Configs read at sync time (small JSON documents that describe the artifact).
DESCRIBING_CONFIGS = frozenset({HELM_CONFIG, WASM_CONFIG})

#: ``sha256-<64 hex>`` with cosign's suffixes, or alone (the OCI referrers fallback tag).
_SCHEME_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")

#: At most this many packages of one SBOM are stored (a full distribution has ~5,000).
MAX_PACKAGES = 50_000
#: Files listed for a generic artifact, and parameters kept from a provenance.
MAX_FILES = 200
MAX_PARAMETERS = 100


class Kind(models.TextChoices):
    """What an attached manifest is, as the pages' badges count it."""

    SIGNATURE = "signature", "Signed"
    SBOM = "sbom", "SBOM"
    PROVENANCE = "provenance", "Provenance"
    ATTESTATION = "attestation", "Attestation"
    ARTIFACT = "artifact", "Other artifact"

    @classmethod
    def ordered(cls) -> list[Kind]:
        return [cls.SIGNATURE, cls.SBOM, cls.PROVENANCE, cls.ATTESTATION, cls.ARTIFACT]


class Source(models.TextChoices):
    """How a referrer was linked to its image."""

    SUBJECT = "subject", "subject field"
    TAG_SCHEME = "tag", "cosign tag scheme"
    #: Pushed by digest only: listed by the referrers API, or linked from its push event.
    REFERRERS_API = "api", "referrers API or push event"


def scheme_subject(tag: str) -> str | None:
    """The image digest a cosign tag-scheme tag names (``sha256-<hex>.sig`` →
    ``sha256:<hex>``), or None for any other tag."""
    match = _SCHEME_TAG.match(tag)
    return f"sha256:{match.group(1)}" if match else None


#: The names ``is_attachment_tag`` counts as attachments whatever they point at: cosign's
#: suffixes after any ``sha256-`` name (as they were always hidden), or the bare fallback tag.
_ATTACHMENT_NAME = re.compile(r"^sha256-(?:.*\.(?:sig|att|sbom)|[0-9a-f]{64})\Z", re.DOTALL)


def is_attachment_tag(name: str, subject_digest: str) -> bool:
    """Whether a tag names something attached to an image, not an image (``Tag.attached``):
    a cosign tag-scheme name (``sha256-<hex>.sig``, ``.att``, ``.sbom``, or the OCI fallback
    ``sha256-<hex>``), or a tag on a manifest with a ``subject`` (``subject_digest``).

    The one definition: every writer of a tag row stores its answer, and the pages split a
    tag list on the stored flag (``TagQuerySet.images`` / ``attachments``)."""
    return bool(subject_digest) or _ATTACHMENT_NAME.match(name) is not None


def scheme_tags(digest: str) -> list[str]:
    """The tags cosign's scheme would give things attached to ``digest``."""
    if not digest.startswith("sha256:"):
        return []
    base = "sha256-" + digest.removeprefix("sha256:")
    return [base, f"{base}.sig", f"{base}.att", f"{base}.sbom"]


def predicate_kind(predicate_type: str) -> Kind:
    lowered = predicate_type.lower()
    if "spdx" in lowered or "cyclonedx" in lowered:
        return Kind.SBOM
    if "slsa.dev/provenance" in lowered or "provenance" in lowered:
        return Kind.PROVENANCE
    return Kind.ATTESTATION


def layer_kind(media_type: str, annotations: dict[str, str]) -> Kind | None:
    if media_type == COSIGN_SIMPLESIGNING:
        return Kind.SIGNATURE
    if media_type == DSSE_ENVELOPE:
        return predicate_kind(annotations.get("predicateType", ""))
    if media_type in SBOM_TYPES or media_type == "text/spdx":
        return Kind.SBOM
    return None


def artifact_kind(artifact_type: str) -> Kind | None:
    """The kind an ``artifactType`` says, for one referrer manifest."""
    lowered = artifact_type.lower()
    if artifact_type == NOTATION_SIGNATURE or (
        lowered.startswith(SIGSTORE_BUNDLE_PREFIX) and "signature" in lowered
    ):
        return Kind.SIGNATURE
    if "spdx" in lowered or "cyclonedx" in lowered or "sbom" in lowered:
        return Kind.SBOM
    if "provenance" in lowered or "slsa" in lowered:
        return Kind.PROVENANCE
    if (
        "in-toto" in lowered
        or "attestation" in lowered
        or lowered.startswith(SIGSTORE_BUNDLE_PREFIX)
    ):
        return Kind.ATTESTATION
    return None


def artifact_type_of(document_type: str, config_media_type: str) -> str:
    """``artifactType``, else the config media type when it is what types the artifact."""
    if document_type:
        return document_type
    if config_media_type and config_media_type not in _NEUTRAL_CONFIGS:
        return config_media_type
    return ""


def attached_kinds(
    artifact_type: str,
    layers: list[tuple[str, dict[str, str]]],
    has_subject: bool,
) -> dict[str, int]:
    """kind → count of what a manifest carries when attached to an image.

    Cosign puts one signature or attestation per layer, so each layer counts; a referrer
    typed by its ``artifactType`` counts once. Empty for an ordinary image or artifact.
    """
    counts: dict[str, int] = {}
    by_type = artifact_kind(artifact_type)
    if by_type is not None and not any(layer_kind(m, a) for m, a in layers):
        return {by_type.value: 1}
    for media_type, notes in layers:
        kind = layer_kind(media_type, notes)
        if kind is not None:
            counts[kind.value] = counts.get(kind.value, 0) + 1
    if not counts and by_type is not None:
        counts[by_type.value] = 1
    if not counts and has_subject:
        counts[Kind.ARTIFACT.value] = 1
    return counts


def wanted_documents(layers: list[tuple[str, str, dict[str, str]]]) -> list[tuple[str, str]]:
    """(digest, media type) of the layers worth reading at sync time: SBOMs and attestations."""
    wanted = []
    for digest, media_type, notes in layers:
        kind = layer_kind(media_type, notes)
        if media_type == DSSE_ENVELOPE or (kind is Kind.SBOM and media_type != "text/spdx"):
            wanted.append((digest, media_type))
    return wanted[:4]


def files_of(layers: list[tuple[str, str, int, dict[str, str]]]) -> list[dict[str, Any]]:
    """A generic (oras) artifact's files: the title annotation of each layer."""
    return [
        {"name": text(annotations.get(OCI_TITLE)) or "", "media_type": media_type, "size": size}
        for _, media_type, size, annotations in layers[:MAX_FILES]
    ]


# -- documents ------------------------------------------------------------------------------


@dataclass
class Package:
    name: str
    version: str = ""
    licence: str = ""
    purl: str = ""


@dataclass
class Document:
    """What a layer's document holds, once read."""

    #: "spdx", "cyclonedx", "provenance" or "attestation".
    format: str = ""
    name: str = ""
    predicate_type: str = ""
    packages: list[Package] | None = None
    provenance: dict[str, Any] | None = None
    #: Why the document could not be read ("" when it was).
    problem: str = ""

    def summary(self, digest: str, media_type: str, size: int) -> dict[str, Any]:
        info: dict[str, Any] = {
            "blob": digest,
            "media_type": media_type,
            "size": size,
            "format": self.format,
            "name": self.name,
            "predicate_type": self.predicate_type,
        }
        if self.packages is not None:
            info["packages"] = len(self.packages)
        if self.problem:
            info["problem"] = self.problem
        return clean_json(info)


def read_document(media_type: str, body: bytes) -> Document:
    """An SBOM (SPDX or CycloneDX JSON), or an in-toto attestation in a DSSE envelope holding
    one or a SLSA provenance."""
    try:
        document = json.loads(body)
    except ValueError:
        return Document(problem="The document is not JSON.")
    if not isinstance(document, dict):
        return Document(problem="The document is not a JSON object.")
    if media_type == DSSE_ENVELOPE or "payloadType" in document:
        return _read_envelope(document)
    return _read_sbom(document)


def unwrap(media_type: str, body: bytes) -> tuple[bytes, str]:
    """The SBOM or predicate inside a DSSE envelope as JSON bytes (for a download), else the
    bytes unchanged; with a file extension."""
    if media_type != DSSE_ENVELOPE:
        return body, "json"
    try:
        statement = _statement(json.loads(body))
    except (ValueError, TypeError, AttributeError):
        return body, "json"
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    if predicate is None:
        return body, "json"
    return json.dumps(predicate, indent=2).encode(), "json"


def _statement(envelope: Any) -> dict[str, Any]:
    if not isinstance(envelope, dict):
        raise ValueError("not an envelope")
    payload = envelope.get("payload")
    if not isinstance(payload, str):
        raise ValueError("no payload")
    try:
        decoded = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("payload is not base64") from exc
    statement = json.loads(decoded)
    if not isinstance(statement, dict):
        raise ValueError("statement is not an object")
    return statement


def _read_envelope(envelope: dict[str, Any]) -> Document:
    if text(envelope.get("payloadType")) != IN_TOTO:
        return Document(format="attestation", problem="The envelope holds no in-toto statement.")
    try:
        statement = _statement(envelope)
    except ValueError as exc:
        return Document(format="attestation", problem=f"The envelope cannot be read ({exc}).")
    predicate_type = text(statement.get("predicateType"))
    predicate = statement.get("predicate")
    kind = predicate_kind(predicate_type)
    if kind is Kind.SBOM and isinstance(predicate, dict):
        found = _read_sbom(predicate)
        found.predicate_type = predicate_type
        return found
    if kind is Kind.PROVENANCE and isinstance(predicate, dict):
        return Document(
            format="provenance",
            predicate_type=predicate_type,
            provenance=clean_json(provenance_facts(predicate)),
        )
    return Document(format="attestation", predicate_type=predicate_type)


def _read_sbom(document: dict[str, Any]) -> Document:
    if "spdxVersion" in document or isinstance(document.get("packages"), list):
        return Document(
            format="spdx", name=text(document.get("name"))[:255], packages=list(_spdx(document))
        )
    if document.get("bomFormat") == "CycloneDX" or isinstance(document.get("components"), list):
        metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
        component = metadata.get("component") if isinstance(metadata, dict) else None
        name = text(component.get("name")) if isinstance(component, dict) else ""
        return Document(format="cyclonedx", name=name[:255], packages=list(_cyclonedx(document)))
    return Document(problem="The document is neither SPDX nor CycloneDX JSON.")


def _spdx(document: dict[str, Any]) -> Iterator[Package]:
    for entry in _list(document.get("packages"))[:MAX_PACKAGES]:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        purl = ""
        for ref in _list(entry.get("externalRefs")):
            if isinstance(ref, dict) and ref.get("referenceType") == "purl":
                purl = text(ref.get("referenceLocator"))
                break
        licence = ""
        for key in ("licenseConcluded", "licenseDeclared"):
            value = text(entry.get(key))
            if value and value not in ("NOASSERTION", "NONE"):
                licence = value
                break
        yield _package(entry.get("name"), entry.get("versionInfo"), licence, purl)


def _cyclonedx(document: dict[str, Any]) -> Iterator[Package]:
    count = 0
    stack = list(reversed(_list(document.get("components"))))
    while stack and count < MAX_PACKAGES:
        entry = stack.pop()
        if not isinstance(entry, dict):
            continue
        stack.extend(reversed(_list(entry.get("components"))))  # nested components
        if not entry.get("name"):
            continue
        licences = []
        for choice in _list(entry.get("licenses")):
            if not isinstance(choice, dict):
                continue
            if choice.get("expression"):
                licences.append(text(choice["expression"]))
            elif isinstance(choice.get("license"), dict):
                licence = choice["license"]
                licences.append(text(licence.get("id") or licence.get("name")))
        count += 1
        yield _package(
            entry.get("name"), entry.get("version"), " OR ".join(licences), entry.get("purl")
        )


def _package(name: Any, version: Any, licence: Any, purl: Any) -> Package:
    return Package(
        name=text(name)[:255],
        version=text(version)[:255],
        licence=text(licence)[:255],
        purl=text(purl)[:500],
    )


def provenance_facts(predicate: dict[str, Any]) -> dict[str, Any]:
    """Builder, source and build parameters of a SLSA provenance, v0.2 or v1."""
    facts: dict[str, Any] = {"builder": "", "build_type": "", "source": "", "parameters": {}}
    if isinstance(predicate.get("runDetails"), dict) or isinstance(
        predicate.get("buildDefinition"), dict
    ):  # SLSA v1
        run = _mapping(predicate.get("runDetails"))
        definition = _mapping(predicate.get("buildDefinition"))
        facts["builder"] = text(_mapping(run.get("builder")).get("id"))
        facts["build_type"] = text(definition.get("buildType"))
        parameters = _mapping(definition.get("externalParameters"))
        facts["parameters"] = _flat(parameters)
        for dependency in _list(definition.get("resolvedDependencies")):
            if isinstance(dependency, dict) and dependency.get("uri"):
                facts["source"] = text(dependency["uri"])
                break
        source = parameters.get("source") or _mapping(parameters.get("workflow")).get("repository")
        if isinstance(source, str) and not facts["source"]:
            facts["source"] = source
        return facts
    facts["builder"] = text(_mapping(predicate.get("builder")).get("id"))  # SLSA v0.2
    facts["build_type"] = text(predicate.get("buildType"))
    invocation = _mapping(predicate.get("invocation"))
    config_source = _mapping(invocation.get("configSource"))
    source = text(config_source.get("uri"))
    digest = _mapping(config_source.get("digest"))
    if source and digest:
        algorithm, value = next(iter(digest.items()))
        source = f"{source}@{text(algorithm)}:{text(value)}"
    if not source:
        for material in _list(predicate.get("materials")):
            if isinstance(material, dict) and material.get("uri"):
                source = text(material["uri"])
                break
    facts["source"] = source
    facts["parameters"] = _flat(_mapping(invocation.get("parameters")))
    return facts


def _flat(parameters: dict[str, Any]) -> dict[str, str]:
    """Parameters as text, one level deep (nested values as compact JSON)."""
    flat: dict[str, str] = {}
    for key, value in list(parameters.items())[:MAX_PARAMETERS]:
        if isinstance(value, str):
            flat[text(key)] = value[:1000]
        else:
            flat[text(key)] = json.dumps(value, separators=(",", ":"))[:1000]
    return flat


def describing_config(media_type: str, body: bytes) -> dict[str, Any]:
    """A Helm chart's (Chart.yaml as JSON) or WASM module's config, the fields a page shows."""
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    keys = (
        ("name", "version", "appVersion", "description", "type", "apiVersion", "kubeVersion")
        if media_type == HELM_CONFIG
        else ("created", "author", "architecture", "os", "layerDigests")
    )
    found = {key: document[key] for key in keys if isinstance(document.get(key), str | int)}
    return clean_json({k: str(v)[:500] for k, v in found.items()})


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
