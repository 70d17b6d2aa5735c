"""The throw-away manifest that removes one tag on registry 2.8 (which cannot delete by tag).

The tag is pointed at a tiny, unique image, whose digest is then deleted: the registry removes
the tags pointing at that digest, which is only this tag. Each placeholder is unique (its config
names the repository, the tag, the time and a random nonce), so deleting it can never take
another tag with it. It has no layers (registry 2.8 accepts that), and after the delete nothing
links it: garbage-collect removes its two small blobs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from registryui.registry.client import sha256_digest
from registryui.registry.mediatypes import OCI_CONFIG, OCI_MANIFEST

#: The label (and manifest annotation) that marks a placeholder, e.g. for a notification handler
#: that would rather ignore its short life.
LABEL = "io.registryui.placeholder"


@dataclass(frozen=True)
class Placeholder:
    config: bytes
    manifest: bytes
    media_type: str = OCI_MANIFEST

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def build(repository: str, tag: str, when: datetime | None = None) -> Placeholder:
    when = when or timezone.now()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    note = f"Deleting {repository}:{tag} at {stamp} ({secrets.token_hex(8)})"
    config = json.dumps(
        {
            "created": stamp,
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {LABEL: note}},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [],
            "annotations": {LABEL: note},
        },
        separators=(",", ":"),
    ).encode()
    return Placeholder(config=config, manifest=manifest)
