"""Helpers of the token server's tests: the issuer and service names, the test key's files,
and the checks a registry makes on a token."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509

ISSUER = "registryui-tests"
SERVICE = "registryui-tests-registry"


@dataclass(frozen=True)
class KeyFiles:
    key: Path
    cert: Path

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert.read_bytes())


def decode(token: str, key_files: KeyFiles, *, audience: str = SERVICE) -> dict:
    """Verify a token as the registry would: signature by the certificate's key, iss, aud."""
    header = jwt.get_unverified_header(token)
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert leaf == key_files.certificate
    return jwt.decode(
        token,
        key_files.certificate.public_key(),
        algorithms=[header["alg"]],
        audience=audience,
        issuer=ISSUER,
    )


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}
