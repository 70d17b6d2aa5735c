"""Push signatures, SBOMs, attestations and OCI artifacts exactly as the tools write them.

No cosign, notation, oras or helm binary is installed here, so these build the same
manifests and blobs in Python, through the registry API:

- ``cosign sign`` (tag scheme): ``sha256-<hex>.sig``, an OCI manifest whose layers are
  simple-signing payloads (``application/vnd.dev.cosign.simplesigning.v1+json``) carrying the
  signature, certificate, chain and bundle in annotations;
- ``cosign attest`` / ``attest --type spdxjson``: ``sha256-<hex>.att``, layers that are DSSE
  envelopes (``application/vnd.dsse.envelope.v1+json``) of in-toto statements, typed by a
  ``predicateType`` annotation;
- ``cosign attach sbom``: ``sha256-<hex>.sbom``, a layer ``text/spdx+json``;
- ``notation sign`` and ``oras attach``: OCI 1.1 manifests with ``subject`` and
  ``artifactType`` (empty config), pushed by digest (and optionally tagged);
- ``helm push``: a chart (``application/vnd.cncf.helm.config.v1+json`` config, the chart
  tarball as its layer); ``oras push``: files with their title annotations.

Signatures are random bytes and certificates self-signed: nothing here verifies them, and the
UI only shows what they claim.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

from registryui.registry import RegistryClient
from registryui.registry.mediatypes import OCI_CONFIG, OCI_MANIFEST

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SPDX_JSON = "text/spdx+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
NOTATION = "application/vnd.cncf.notary.signature"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
SPDX_PREDICATE = "https://spdx.dev/Document"
SLSA_PREDICATE = "https://slsa.dev/provenance/v0.2"
FULCIO_ISSUER = "https://token.actions.githubusercontent.com"


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes, annotations: dict[str, str] | None = None) -> dict:
    entry: dict[str, Any] = {"mediaType": media_type, "digest": _digest(data), "size": len(data)}
    if annotations:
        entry["annotations"] = annotations
    return entry


def _scheme_tag(digest: str, suffix: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:") + (f".{suffix}" if suffix else "")


def certificate(identity: str, issuer: str = FULCIO_ISSUER) -> str:
    """A PEM certificate shaped like Fulcio's: the identity in the SAN (an email or a URI),
    the OIDC issuer in the Sigstore extensions 1.3.6.1.4.1.57264.1.1 (raw) and .1.8 (DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev")])
    san = (
        x509.RFC822Name(identity)
        if "@" in identity and "/" not in identity
        else x509.UniformResourceIdentifier(identity)
    )
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    utf8 = b"\x0c" + bytes([len(issuer)]) + issuer.encode()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()
            ),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), utf8),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Attacher:
    """Pushes what the tools attach to images already in ``repository``."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def _config(self, repository: str, layers: list[bytes]) -> bytes:
        """cosign's config: an empty OCI image config listing the layers' diff ids."""
        config = _json(
            {
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [_digest(x) for x in layers]},
                "config": {},
            }
        )
        self.client.upload_blob(repository, config)
        return config

    def _put(self, repository: str, reference: str, document: dict) -> str:
        return self.client.put_manifest(repository, reference, _json(document), OCI_MANIFEST)

    def _cosign(
        self, repository: str, digest: str, suffix: str, layers: list[tuple[str, bytes, dict]]
    ) -> str:
        for _, data, _ in layers:
            self.client.upload_blob(repository, data)
        config = self._config(repository, [data for _, data, _ in layers])
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(m, data, a) for m, data, a in layers],
        }
        return self._put(repository, _scheme_tag(digest, suffix), document)

    def cosign_sign(
        self,
        repository: str,
        digest: str,
        *,
        identities: tuple[str, ...] = ("release@example.com",),
        issuer: str = FULCIO_ISSUER,
        reference: str = "",
    ) -> str:
        """``cosign sign`` keyless, once per identity (cosign appends a layer per signature)."""
        layers = []
        for i, identity in enumerate(identities):
            payload = _json(
                {
                    "critical": {
                        "identity": {"docker-reference": reference or repository},
                        "image": {"docker-manifest-digest": digest},
                        "type": "cosign container image signature",
                    },
                    "optional": {"n": i} if i else None,
                }
            )
            bundle = {
                "SignedEntryTimestamp": base64.b64encode(b"set").decode(),
                "Payload": {
                    "body": base64.b64encode(b"{}").decode(),
                    "integratedTime": 1793534400 + i,
                    "logIndex": 123456 + i,
                    "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
                },
            }
            annotations = {
                "dev.cosignproject.cosign/signature": base64.b64encode(
                    hashlib.sha256(payload + identity.encode()).digest()
                ).decode(),
                "dev.sigstore.cosign/certificate": certificate(identity, issuer),
                "dev.sigstore.cosign/chain": "",
                "dev.sigstore.cosign/bundle": json.dumps(bundle, separators=(",", ":")),
            }
            layers.append((SIMPLESIGNING, payload, annotations))
        return self._cosign(repository, digest, "sig", layers)

    def cosign_attest(
        self, repository: str, digest: str, predicates: list[tuple[str, dict]]
    ) -> str:
        """``cosign attest``: one DSSE envelope layer per (predicate type, predicate)."""
        layers = []
        for predicate_type, predicate in predicates:
            statement = {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": predicate_type,
                "subject": [
                    {"name": repository, "digest": {"sha256": digest.removeprefix("sha256:")}}
                ],
                "predicate": predicate,
            }
            envelope = {
                "payloadType": IN_TOTO,
                "payload": base64.b64encode(_json(statement)).decode(),
                "signatures": [{"keyid": "", "sig": base64.b64encode(b"sig").decode()}],
            }
            layers.append(
                (
                    DSSE,
                    _json(envelope),
                    {
                        "dev.cosignproject.cosign/signature": "",
                        "predicateType": predicate_type,
                    },
                )
            )
        return self._cosign(repository, digest, "att", layers)

    def cosign_attach_sbom(self, repository: str, digest: str, sbom: dict) -> str:
        """``cosign attach sbom --type spdx``: the document as the only layer."""
        return self._cosign(repository, digest, "sbom", [(SPDX_JSON, _json(sbom), {})])

    def _referrer(
        self,
        repository: str,
        subject: tuple[str, str, int],
        artifact_type: str,
        blobs: list[tuple[str, bytes, dict]],
        annotations: dict[str, str],
        tag: str | None,
    ) -> str:
        empty = b"{}"
        self.client.upload_blob(repository, empty)
        for _, data, _ in blobs:
            self.client.upload_blob(repository, data)
        subject_digest, subject_type, subject_size = subject
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": _descriptor(EMPTY_CONFIG, empty),
            "layers": [_descriptor(m, data, a) for m, data, a in blobs],
            "subject": {"mediaType": subject_type, "digest": subject_digest, "size": subject_size},
            "annotations": annotations,
        }
        body = _json(document)
        return self.client.put_manifest(repository, tag or _digest(body), body, OCI_MANIFEST)

    def subject(self, repository: str, digest: str) -> tuple[str, str, int]:
        ref = self.client.head_manifest(repository, digest)
        return digest, ref.media_type, ref.size

    def notation_sign(
        self,
        repository: str,
        digest: str,
        *,
        signed_at: str = "2026-11-02T09:30:00Z",
        tag: str | None = None,
    ) -> str:
        """``notation sign``: a JWS envelope referring to the image by ``subject``; pushed by
        digest, as notation does (``tag`` adds the fallback tag a registry without the
        referrers API gets from notation 1.0's ``--force-referrers-tag``)."""
        header = {
            "alg": "PS256",
            "crit": ["io.cncf.notary.signingScheme"],
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": signed_at,
        }
        payload = {"targetArtifact": {"digest": digest, "mediaType": OCI_MANIFEST}}
        jws = _json(
            {
                "payload": base64.urlsafe_b64encode(_json(payload)).decode().rstrip("="),
                "protected": base64.urlsafe_b64encode(_json(header)).decode().rstrip("="),
                "header": {"x5c": []},
                "signature": base64.urlsafe_b64encode(b"signature").decode().rstrip("="),
            }
        )
        thumbprint = hashlib.sha256(b"leaf").hexdigest()
        return self._referrer(
            repository,
            self.subject(repository, digest),
            NOTATION,
            [("application/jose+json", jws, {})],
            {
                "io.cncf.notary.x509chain.thumbprint#S256": json.dumps([thumbprint]),
                "org.opencontainers.image.created": signed_at,
            },
            tag,
        )

    def oras_attach(
        self,
        repository: str,
        digest: str,
        artifact_type: str,
        files: dict[str, bytes],
        *,
        tag: str | None = None,
    ) -> str:
        """``oras attach --artifact-type T``: files as layers titled with their names."""
        blobs = [
            ("application/octet-stream", data, {"org.opencontainers.image.title": name})
            for name, data in files.items()
        ]
        return self._referrer(
            repository,
            self.subject(repository, digest),
            artifact_type,
            blobs,
            {"org.opencontainers.image.created": "2026-11-03T10:00:00Z"},
            tag,
        )

    def helm_push(
        self, repository: str, name: str, version: str, app_version: str, description: str = ""
    ) -> str:
        """``helm push``: Chart.yaml as the JSON config, the chart tarball as the layer."""
        chart = {
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": app_version,
            "description": description or f"A Helm chart for {name}",
            "type": "application",
        }
        config = _json(chart)
        tarball = _tgz({f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\n".encode()})
        self.client.upload_blob(repository, config)
        self.client.upload_blob(repository, tarball)
        document = {
            "schemaVersion": 2,
            "config": _descriptor(HELM_CONFIG, config),
            "layers": [_descriptor(HELM_CHART, tarball)],
            "annotations": {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": version,
            },
        }
        return self._put(repository, version, {"mediaType": OCI_MANIFEST, **document})

    def oras_push(
        self, repository: str, tag: str, artifact_type: str, files: dict[str, bytes]
    ) -> str:
        """``oras push --artifact-type T``: files with titles, an empty config."""
        empty = b"{}"
        self.client.upload_blob(repository, empty)
        for data in files.values():
            self.client.upload_blob(repository, data)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": _descriptor(EMPTY_CONFIG, empty),
            "layers": [
                _descriptor(
                    "application/octet-stream", data, {"org.opencontainers.image.title": name}
                )
                for name, data in files.items()
            ],
        }
        return self._put(repository, tag, document)


def _tgz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def spdx_document(name: str, packages: list[tuple[str, str, str]]) -> dict:
    """An SPDX 2.3 JSON document as syft writes it: (name, version, licence) per package."""
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://anchore.com/syft/image/{name}",
        "creationInfo": {"created": "2026-11-01T10:00:00Z", "creators": ["Tool: syft-1.0.0"]},
        "packages": [
            {
                "name": package,
                "SPDXID": f"SPDXRef-Package-{i}",
                "versionInfo": version,
                "downloadLocation": "NOASSERTION",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": licence,
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": f"pkg:deb/debian/{package}@{version}",
                    }
                ],
            }
            for i, (package, version, licence) in enumerate(packages)
        ],
    }


def cyclonedx_document(name: str, packages: list[tuple[str, str, str]]) -> dict:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"type": "container", "name": name}},
        "components": [
            {
                "type": "library",
                "name": package,
                "version": version,
                "licenses": [{"license": {"id": licence}}],
                "purl": f"pkg:pypi/{package}@{version}",
            }
            for package, version, licence in packages
        ],
    }


def slsa_provenance(source: str, commit: str, builder: str) -> dict:
    """A SLSA v0.2 provenance predicate as GitHub's generator writes it."""
    return {
        "builder": {"id": builder},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
        "invocation": {
            "configSource": {
                "uri": f"git+{source}@refs/heads/main",
                "digest": {"sha1": commit},
                "entryPoint": ".github/workflows/release.yml",
            },
            "parameters": {"event_name": "push", "ref": "refs/heads/main"},
        },
        "materials": [{"uri": f"git+{source}", "digest": {"sha1": commit}}],
    }


#: Packages of the sample SBOMs (name, version, licence).
SAMPLE_PACKAGES = [
    ("openssl", "3.0.15-1~deb12u1", "Apache-2.0"),
    ("libc6", "2.36-9+deb12u9", "LGPL-2.1-or-later"),
    ("zlib1g", "1:1.2.13.dfsg-1", "Zlib"),
    ("ca-certificates", "20230311", "MPL-2.0"),
    ("python3.11", "3.11.2-6+deb12u5", "PSF-2.0"),
]


def push_attached_samples(client: RegistryClient) -> dict[str, str]:
    """Signed images, SBOMs, attestations, a Helm chart and a generic artifact, with a base
    image others are built on; reference (or a name for an untagged one) → digest."""
    from .seed import Seeder, put_image

    seeder = Seeder(client)
    attacher = Attacher(client)
    base_config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-10-01T00:00:00Z",
            "config": {"Labels": {"org.opencontainers.image.title": "base"}},
        }
    )
    pushed: dict[str, str] = {}
    pushed["team-a/base:bookworm"] = put_image(
        client, "team-a/base", "bookworm", base_config, seeder=seeder
    )
    for name, tag, layers, created in (
        ("team-a/signed", "1.0", 2, "2026-11-01T10:00:00Z"),
        ("team-a/signed", "2.0", 2, "2026-11-20T10:00:00Z"),
        ("team-b/app", "1", 3, "2026-11-05T10:00:00Z"),
    ):
        config = _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": created,
                "config": {"Labels": {"org.opencontainers.image.version": tag}},
            }
        )
        pushed[f"{name}:{tag}"] = put_image(client, name, tag, config, layers=layers, seeder=seeder)
    signed = pushed["team-a/signed:1.0"]
    pushed["team-a/signed:sig"] = attacher.cosign_sign(
        "team-a/signed",
        signed,
        identities=(
            "https://github.com/example/signed/.github/workflows/release.yml@refs/heads/main",
            "release@example.com",
        ),
    )
    pushed["team-a/signed:att"] = attacher.cosign_attest(
        "team-a/signed",
        signed,
        [
            (SPDX_PREDICATE, spdx_document("team-a/signed", SAMPLE_PACKAGES)),
            (
                SLSA_PREDICATE,
                slsa_provenance(
                    "https://github.com/example/signed",
                    "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
                    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0",
                ),
            ),
        ],
    )
    pushed["team-a/signed:sbom"] = attacher.cosign_attach_sbom(
        "team-a/signed", signed, cyclonedx_document("team-a/signed", SAMPLE_PACKAGES[:3])
    )
    pushed["team-a/signed@notation"] = attacher.notation_sign("team-a/signed", signed)
    pushed["team-a/signed:scan"] = attacher.oras_attach(
        "team-a/signed",
        signed,
        "application/vnd.example.scan-report+json",
        {"report.json": b'{"vulnerabilities": []}'},
        tag="scan-report",
    )
    pushed["team-b/app:sig"] = attacher.cosign_sign("team-b/app", pushed["team-b/app:1"])
    pushed["team-a/charts/app:0.3.1"] = attacher.helm_push(
        "team-a/charts/app", "app", "0.3.1", "2.0"
    )
    pushed["team-a/files:v1"] = attacher.oras_push(
        "team-a/files",
        "v1",
        "application/vnd.example.config+tar",
        {"settings.yaml": b"debug: false\n", "README.md": b"# settings\n"},
    )
    return pushed
