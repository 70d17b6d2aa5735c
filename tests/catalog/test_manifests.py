"""Reading manifests and image configs into the facts we store (no registry, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from registryui.catalog.manifests import (
    MAX_BLOB_SIZE,
    ManifestFormatError,
    apply_config,
    parse_manifest,
    summarise_index,
)
from registryui.lib.untrusted import parse_timestamp
from registryui.registry import mediatypes

D = {c: f"sha256:{c * 64}" for c in "abcdef0123"}


def raw(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_an_oci_image():
    body = raw(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": D["c"], "size": 700},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": D["a"],
                    "size": 1000,
                },
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": D["b"],
                    "size": 2000,
                },
            ],
        }
    )
    fetched = parse_manifest(D["0"], mediatypes.OCI_MANIFEST, body)
    assert fetched.kind == "image"
    assert (fetched.size, fetched.raw) == (len(body), body)
    assert (fetched.config_digest, fetched.config_size) == (D["c"], 700)
    assert [(layer.digest, layer.size) for layer in fetched.layers] == [
        (D["a"], 1000),
        (D["b"], 2000),
    ]
    assert fetched.total_size == 3700
    assert fetched.wants_config


def test_the_media_type_in_the_document_wins_over_the_header():
    body = raw({"mediaType": mediatypes.DOCKER_MANIFEST, "config": {"digest": D["c"]}})
    fetched = parse_manifest(D["0"], "application/json", body)
    assert fetched.media_type == mediatypes.DOCKER_MANIFEST and fetched.kind == "image"
    # An image without a known config type has no config to fetch (e.g. an artifact).
    assert not fetched.wants_config


def test_an_index_with_platforms_and_an_attestation():
    body = raw(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": D["a"],
                    "size": 500,
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": D["b"],
                    "size": 501,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": D["c"],
                    "size": 502,
                    "platform": {
                        "os": "windows",
                        "architecture": "amd64",
                        "os.version": "10.0.17763.1234",
                    },
                },
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": D["d"],
                    "size": 300,
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": D["a"],
                    },
                },
            ],
        }
    )
    fetched = parse_manifest(D["0"], mediatypes.OCI_INDEX, body)
    assert fetched.kind == "index"
    assert [c.platform for c in fetched.children] == [
        "linux/amd64",
        "linux/arm64/v8",
        "windows/amd64",
        "unknown/unknown",
    ]
    assert fetched.children[2].os_version == "10.0.17763.1234"
    assert [c.is_attestation for c in fetched.children] == [False, False, False, True]

    children = {
        D["a"]: SimpleNamespace(total_size=100, created=datetime(2026, 1, 1, tzinfo=UTC)),
        D["b"]: SimpleNamespace(total_size=200, created=datetime(2026, 2, 1, tzinfo=UTC)),
        D["c"]: SimpleNamespace(total_size=300, created=None),
        D["d"]: SimpleNamespace(total_size=5, created=datetime(2027, 1, 1, tzinfo=UTC)),
    }
    summarise_index(fetched, children)
    # Attestations are not platforms and do not date the image; their bytes are still pulled.
    assert fetched.platforms == "linux/amd64, linux/arm64/v8, windows/amd64"
    assert fetched.created == datetime(2026, 2, 1, tzinfo=UTC)
    assert fetched.total_size == 605


def test_a_docker_manifest_list_without_media_type_header():
    body = raw({"schemaVersion": 2, "manifests": [{"digest": D["a"], "size": 1}]})
    fetched = parse_manifest(D["0"], "", body)
    assert fetched.kind == "index" and fetched.children[0].platform == ""


def test_schema1_is_kept_as_other():
    body = raw(
        {
            "schemaVersion": 1,
            "name": "a",
            "tag": "1",
            "architecture": "amd64",
            "fsLayers": [],
            "history": [],
        }
    )
    fetched = parse_manifest(D["0"], mediatypes.DOCKER_SCHEMA1_SIGNED, body)
    assert (fetched.kind, fetched.architecture) == ("other", "amd64")
    assert fetched.layers == [] and fetched.total_size == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        raw({"mediaType": mediatypes.OCI_INDEX, "manifests": ["not an object"]}),
        raw({"mediaType": mediatypes.OCI_INDEX, "manifests": [{"size": 1}]}),  # no digest
        raw({"manifests": [{"digest": D["a"], "platform": "linux/amd64"}]}),
        raw({"mediaType": mediatypes.OCI_MANIFEST, "config": "sha256:c"}),
        raw({"mediaType": mediatypes.OCI_MANIFEST, "config": {}, "layers": [7]}),
    ],
)
def test_unreadable_manifests(body):
    """Only ManifestFormatError: the sync and the notification handler make it one
    repository's error (or one event's), never a crash of the whole run."""
    with pytest.raises(ManifestFormatError):
        parse_manifest(D["0"], mediatypes.OCI_MANIFEST, body)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1234, 1234),
        (0, 0),
        (MAX_BLOB_SIZE, MAX_BLOB_SIZE),
        (None, 0),
        (-1, 0),  # some tools write -1 for "unknown"; the registry stores it unchecked
        (MAX_BLOB_SIZE + 1, 0),
        (2**70, 0),  # would overflow the database's 64-bit columns
        (12.5, 0),
        ("1234", 0),
        (True, 0),
    ],
)
def test_a_size_that_is_not_a_byte_count_is_unknown(size, expected):
    descriptor = {"digest": D["a"], "size": size}
    image = parse_manifest(
        D["0"],
        mediatypes.OCI_MANIFEST,
        raw({"config": {**descriptor, "digest": D["c"]}, "layers": [descriptor, descriptor]}),
    )
    assert image.config_size == expected
    assert [layer.size for layer in image.layers] == [expected, expected]
    assert image.total_size == 3 * expected
    index = parse_manifest(D["1"], mediatypes.OCI_INDEX, raw({"manifests": [descriptor]}))
    assert index.children[0].size == expected


def test_a_config_fills_the_image_facts():
    fetched = parse_manifest(
        D["0"],
        mediatypes.OCI_MANIFEST,
        raw({"config": {"mediaType": mediatypes.OCI_CONFIG, "digest": D["c"], "size": 1}}),
    )
    config = {
        "created": "2026-03-04T05:06:07.123456789Z",
        "os": "linux",
        "architecture": "arm",
        "variant": "v7",
        "config": {
            "Labels": {"a": "1", "b": 2},
            "Env": ["A=1"],
            "Entrypoint": ["/init"],
            "Cmd": None,
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "WorkingDir": "/srv",
            "User": "app",
            "Volumes": {"/data": {}},
            "StopSignal": "SIGINT",
        },
        "history": [
            {"created": "2026-03-04T05:06:07Z", "created_by": "ADD x /", "empty_layer": True},
            "not a dict",
        ],
    }
    apply_config(fetched, raw(config))
    assert fetched.created == datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert fetched.platforms == "linux/arm/v7"
    assert fetched.labels == {"a": "1", "b": "2"}
    assert fetched.config == {
        "Entrypoint": ["/init"],
        "Cmd": None,
        "Env": ["A=1"],
        "ExposedPorts": ["53/udp", "8080/tcp"],
        "WorkingDir": "/srv",
        "User": "app",
        "Volumes": ["/data"],
        "StopSignal": "SIGINT",
    }
    assert fetched.history == [
        {
            "created": "2026-03-04T05:06:07Z",
            "created_by": "ADD x /",
            "comment": "",
            "empty_layer": True,
        }
    ]


@pytest.mark.parametrize("config", [b"garbage", b"[]", b'{"config": null}'])
def test_a_broken_config_leaves_the_facts_empty(config):
    fetched = parse_manifest(D["0"], mediatypes.OCI_MANIFEST, raw({"config": {"digest": D["c"]}}))
    apply_config(fetched, config)
    assert fetched.labels == {} and fetched.created is None


@pytest.mark.parametrize(
    "section",
    [
        "not an object",
        ["a", "list"],
        {
            "Labels": ["a=1"],
            "Env": "A=1",
            "ExposedPorts": ["8080/tcp"],
            "Volumes": "/data",
        },
    ],
)
def test_a_config_of_another_shape_keeps_what_it_can(section):
    """The registry stores a config blob without reading it: odd shapes leave those facts
    empty, and the rest (created, platform) is still read."""
    fetched = parse_manifest(D["0"], mediatypes.OCI_MANIFEST, raw({"config": {"digest": D["c"]}}))
    config = {
        "created": "2026-01-02T03:04:05Z",
        "os": "linux",
        "architecture": "amd64",
        "config": section,
        "history": 5,
    }
    apply_config(fetched, raw(config))
    assert fetched.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert fetched.platforms == "linux/amd64"
    assert fetched.labels == {} and fetched.history == []
    assert fetched.config["Env"] == []
    assert fetched.config["ExposedPorts"] == [] and fetched.config["Volumes"] == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.123456789Z", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2026-01-02T03:04:05.1+02:00", datetime(2026, 1, 2, 1, 4, 5, 100000, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", None),  # reproducible builds: unknown, not 1970
        ("yesterday", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected
