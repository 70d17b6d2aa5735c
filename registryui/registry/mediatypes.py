"""Media types of the Distribution and OCI specifications."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
#: Every manifest type: what a notification's ``target.mediaType`` is when it is no blob.
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES | SCHEMA1_TYPES
#: The manifest types that can name a ``subject`` (OCI 1.1): what a referrer is pushed as.
SUBJECT_TYPES = frozenset({OCI_MANIFEST, OCI_INDEX})

#: Sent on every manifest HEAD and GET. Without all four, registry 2.8 rewrites a Docker image
#: to schema1 (another digest), answers a manifest list with its amd64 child's digest, and
#: answers 404 for OCI types: the digest we stored would be wrong.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES
