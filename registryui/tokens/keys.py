"""The token signing key and its certificate: made by ``token_keys``, read by the signer.

The registry trusts tokens whose ``x5c`` header holds a certificate chain ending in its
``rootcertbundle``. We use one self-signed certificate: it is both the chain and the bundle.
EC P-256 keys sign ES256 (the default: short tokens, fast), RSA keys RS256.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

ALGORITHMS = ("ES256", "RS256")


class TokenKeyError(Exception):
    """The key or certificate cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    algorithm: str
    certificates: tuple[x509.Certificate, ...]

    @property
    def x5c(self) -> list[str]:
        """The ``x5c`` header: base64 DER (not URL-safe base64), leaf first (RFC 7515 4.1.6)."""
        return [
            base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
            for cert in self.certificates
        ]

    @property
    def not_valid_after(self) -> dt.datetime:
        return self.certificates[0].not_valid_after_utc


def resolve_path(path: str | os.PathLike) -> Path:
    """Relative paths in settings are relative to the project folder, not the working folder."""
    path = Path(path)
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


# -- making keys --------------------------------------------------------------------------------


def generate_private_key(algorithm: str = "ES256"):
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"Unknown algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}.")


def self_signed_certificate(private_key, common_name: str, *, days: int = 3650) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "registryui")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        # A little in the past, so that a registry whose clock lags still accepts it.
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(private_key, hashes.SHA256())
    )


def private_key_pem(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_key_pair(
    key_path: Path, cert_path: Path, *, algorithm: str = "ES256", common_name: str, days: int
) -> SigningKey:
    """Write a new key (mode 0600) and its self-signed certificate (mode 0644)."""
    private_key = generate_private_key(algorithm)
    certificate = self_signed_certificate(private_key, common_name, days=days)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    # Create the key file with its final mode, so that it is never readable by others.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(private_key))
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(certificate_pem(certificate))
    os.chmod(cert_path, 0o644)
    return SigningKey(private_key, algorithm, (certificate,))


# -- reading keys -------------------------------------------------------------------------------


def load_signing_key(key_path: Path, cert_path: Path) -> SigningKey:
    try:
        key_bytes = key_path.read_bytes()
    except OSError as exc:
        raise TokenKeyError(f"The token key {key_path} cannot be read: {exc.strerror}.") from None
    try:
        cert_bytes = cert_path.read_bytes()
    except OSError as exc:
        raise TokenKeyError(
            f"The token certificate {cert_path} cannot be read: {exc.strerror}."
        ) from None
    try:
        private_key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        raise TokenKeyError(f"{key_path} is not an unencrypted PEM private key: {exc}") from None
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise TokenKeyError(f"{key_path}: EC keys must use the P-256 curve (for ES256).")
        algorithm = "ES256"
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise TokenKeyError(f"{key_path}: RSA keys must have at least 2048 bits.")
        algorithm = "RS256"
    else:
        raise TokenKeyError(f"{key_path}: use an EC P-256 key (ES256) or an RSA key (RS256).")
    try:
        certificates = tuple(x509.load_pem_x509_certificates(cert_bytes))
    except ValueError as exc:
        raise TokenKeyError(f"{cert_path} holds no PEM certificate: {exc}") from None
    if not _same_key(certificates[0], private_key):
        raise TokenKeyError(
            f"The first certificate in {cert_path} is not for the key in {key_path}."
        )
    return SigningKey(private_key, algorithm, certificates)


def _same_key(certificate: x509.Certificate, private_key) -> bool:
    public = certificate.public_key()
    data = b"registryui key check"
    try:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            signature = private_key.sign(data, ec.ECDSA(hashes.SHA256()))
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
        else:
            signature = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    except (InvalidSignature, TypeError, AttributeError):
        return False
    return True


_cache_lock = threading.Lock()
_cache: dict[tuple, SigningKey] = {}


def current_signing_key() -> SigningKey:
    """The configured key, read again only when a file changes (keys can be rotated live)."""
    key_path = resolve_path(settings.TOKEN_KEY_FILE)
    cert_path = resolve_path(settings.TOKEN_CERT_FILE)
    try:
        stamp = (
            str(key_path),
            key_path.stat().st_mtime_ns,
            str(cert_path),
            cert_path.stat().st_mtime_ns,
        )
    except OSError:
        stamp = None
    if stamp is not None:
        with _cache_lock:
            cached = _cache.get(stamp)
        if cached is not None:
            return cached
    key = load_signing_key(key_path, cert_path)
    if stamp is not None:
        with _cache_lock:
            _cache.clear()
            _cache[stamp] = key
    return key
