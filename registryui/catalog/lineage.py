"""Which images are built on which: an image whose layers begin with all of another image's
layers is built on it.

Each stored layer carries ``chain``: a hash of the digests of the layers from the first up to
it (the idea of the OCI chain id, over compressed digests, which is what a manifest lists).
An image's base is then the image whose top layer's chain equals one of this image's chains,
the longest such; the images built on an image are those holding its top chain at the same
position with more layers on top. Both are index look-ups on ``Layer.chain``, whatever the
number of images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def layer_chains(digests: Iterable[str]) -> list[str]:
    """The chain of each prefix of a layer sequence, first layer first."""
    chains, current = [], ""
    for digest in digests:
        current = hashlib.sha256(f"{current} {digest}".encode()).hexdigest()
        chains.append(current)
    return chains
