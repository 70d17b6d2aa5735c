"""The Distribution reference grammar: repository names, tags and digests.

Mirrors ``distribution/reference/regexp.go`` (v2.8). Used to validate every name, tag and digest
that arrives in a URL or a form before it reaches the database or the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import BadRequest

NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
NAME = rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
    r"|\[[0-9a-fA-F:.]+\](?::[0-9]+)?)"
)

NAME_RE = re.compile(rf"^{NAME}$")
COMPONENT_RE = re.compile(rf"^{PATH_COMPONENT}$")
TAG_RE = re.compile(rf"^{TAG}$", re.ASCII)
DIGEST_RE = re.compile(rf"^{DIGEST}$")
_KNOWN_DIGESTS = {"sha256": 64, "sha384": 96, "sha512": 128}
HEX_RE = re.compile(r"^[0-9a-f]+$")

#: Shown on the 400 page so that a user can see what a valid reference looks like.
GRAMMAR = (
    'reference  := name [ ":" tag ] [ "@" digest ]\n'
    'name       := component [ "/" component ]*   (at most 255 characters)\n'
    'component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*\n'
    "tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\n"
    'digest     := "sha256:" 64 lowercase hex digits  (or sha512: 128)'
)


#: The shortest hex prefix a digest is searched by (shorter ones match too much to be useful).
MIN_DIGEST_PREFIX = 6


class InvalidReference(ValueError):
    """A name, tag or digest that does not follow the Distribution grammar."""


class BadReference(BadRequest):
    """A reference in a URL that does not follow the Distribution grammar (a 400 page).

    Lives here, beside the grammar, so that the error pages in ``core`` can recognise it
    without importing the catalog.
    """


def is_valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and bool(NAME_RE.match(name))


def is_valid_component(text: str) -> bool:
    """One path component of a name, e.g. a namespace."""
    return len(text) <= NAME_MAX_LENGTH and bool(COMPONENT_RE.match(text))


def is_valid_tag(tag: str) -> bool:
    return bool(TAG_RE.match(tag))


def is_valid_digest(digest: str) -> bool:
    if not DIGEST_RE.match(digest):
        return False
    algorithm, _, encoded = digest.partition(":")
    length = _KNOWN_DIGESTS.get(algorithm)
    return length is not None and len(encoded) == length and bool(HEX_RE.match(encoded))


def validate_name(name: str) -> str:
    if not is_valid_name(name):
        raise InvalidReference(f"{name!r} is not a valid repository name.")
    return name


def validate_tag(tag: str) -> str:
    if not is_valid_tag(tag):
        raise InvalidReference(f"{tag!r} is not a valid tag.")
    return tag


def validate_digest(digest: str) -> str:
    if not is_valid_digest(digest):
        raise InvalidReference(f"{digest!r} is not a valid digest (expected sha256:<64 hex>).")
    return digest


def namespace_of(name: str) -> str:
    """The first path component of a multi-component name, '' for a top-level repository."""
    head, sep, _ = name.partition("/")
    return head if sep else ""


def name_part(reference: str) -> str:
    """The repository name of ``name[:tag][@digest]`` (split as ``parse_reference`` does)."""
    name = reference.partition("@")[0]
    colon = name.rfind(":")
    return name[:colon] if colon > name.rfind("/") else name


def reference_url(
    name: str, tag: str | None = None, digest: str | None = None, action: str | None = None
) -> str:
    """The page of a repository, tag or image: ``/r/NAME``, ``/r/NAME:TAG``, ``/r/NAME@DIGEST``,
    with ``/-/ACTION`` for an action on it (``delete``, ``retag``, ...).

    The one place these URLs are built. Nothing is quoted: every part follows the reference
    grammar, whose characters are all safe in a path, and the URL patterns match them as is.
    A ``name`` may already carry its ``:tag`` or ``@digest`` (``team-a/api:1.4``).
    """
    url = f"/r/{name}"
    if tag:
        url += f":{tag}"
    if digest:
        url += f"@{digest}"
    if action:
        url += f"/-/{action}"
    return url


def short_digest(digest: str, length: int = 12) -> str:
    _, _, encoded = digest.partition(":")
    return encoded[:length]


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: ``[domain/]name[:tag][@digest]``."""

    name: str
    tag: str | None = None
    digest: str | None = None
    domain: str | None = None

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str, *, allow_domain: bool = True) -> Reference:
    """Parse ``[domain/]name[:tag][@digest]`` strictly; raise InvalidReference otherwise.

    The tag is split at the last ``:`` after the last ``/``, so that ``host:5000/a/b:1`` reads
    as domain ``host:5000``, name ``a/b`` and tag ``1``.
    """
    text = text.strip()
    if not text:
        raise InvalidReference("The reference is empty.")
    remainder, at, digest = text.partition("@")
    domain = None
    if allow_domain:
        first, slash, rest = remainder.partition("/")
        if slash and _looks_like_domain(first):
            if not re.fullmatch(DOMAIN, first):
                raise InvalidReference(f"{first!r} is not a valid registry host.")
            domain, remainder = first, rest
    name, tag = remainder, None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        name, tag = remainder[:colon], remainder[colon + 1 :]
        validate_tag(tag)
    validate_name(name)
    if at:
        validate_digest(digest)
    return Reference(name=name, tag=tag, digest=digest or None, domain=domain)
