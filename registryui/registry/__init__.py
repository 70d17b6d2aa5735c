"""The HTTP client of the Distribution API (no Django models in this package)."""

from .client import (
    BlobStream,
    ManifestRef,
    RegistryClient,
    RequestStats,
)
from .errors import RegistryError
from .mediatypes import MANIFEST_ACCEPT

__all__ = [
    "MANIFEST_ACCEPT",
    "BlobStream",
    "ManifestRef",
    "RegistryClient",
    "RegistryError",
    "RequestStats",
]
