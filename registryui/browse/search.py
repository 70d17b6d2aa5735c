"""Search across repositories, tags, digests and label values, with indexed queries only.

Every query here is bounded and served by an index, so a search costs the same on a catalog of
a thousand tags as on one of a million (see ``bench/pages.py``):

- repositories: substring of the name (a scan of the *repositories* table, which is small next
  to the tags; never of the tags);
- tags: prefix of the tag name (a range on ``tag_name_repository``), optionally within one
  repository
  (``team-a/api:1.``);
- digests: a full ``sha256:…`` or a prefix of at least six hex characters (a range on the
  unique digest index), optionally within one repository (``team-a/api@sha256:3f2a…``);
- labels: prefix of a label value (a range on ``label_value_id``, read in its ``(value, id)``
  order up to the limit), optionally for one key
  (``org.opencontainers.image.source=https://git…``).

Prefixes are matched as ``col >= p AND col < p + U+10FFFF`` (see ``prefix_q``): a range the
B-tree index answers on SQLite (whose LIKE is case-insensitive and cannot use a plain index) and
on PostgreSQL under any collation; it is exactly the prefix where strings compare by code point.

A full reference (``team-a/api:1.4``, ``registry.example.com/team-a/api@sha256:…``) that
resolves to something the user may see is returned as ``exact``: the view goes straight to it.
Everything is narrowed by the permission resolver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Case, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.lookups import IsNull
from django.http import Http404

from registryui.catalog.models import IndexChild, Label, Manifest, Repository, Tag
from registryui.catalog.templatetags.catalog import PLATFORM_RE
from registryui.lib.reference import (
    DOMAIN,
    HEX_RE,
    MIN_DIGEST_PREFIX,
    BadReference,
    InvalidReference,
    is_valid_name,
    is_valid_tag,
    name_part,
    parse_reference,
    reference_url,
)
from registryui.overview.queries import described_as, with_overview
from registryui.teams.permissions import visible_repositories, visible_tags

from . import attached_search
from .lookup import resolve

#: Results shown per kind; one more is fetched to know whether there are more.
LIMIT = 20
#: Longer input is cut: nothing we store is longer than a label value.
MAX_QUERY_LENGTH = Label.VALUE_MAX_LENGTH


_TOP = "\U0010ffff"  # sorts after every other character, in UTF-8 bytes and in code points
_NAME_CHARS_RE = re.compile(r"^[a-z0-9._/-]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_COMMAND_PREFIX_RE = re.compile(r"^(?:docker|podman|nerdctl)\s+(?:image\s+)?(?:pull|run)\s+")


def clean_query(text: str | None) -> str:
    """The query as typed, minus control characters (PostgreSQL rejects NUL) and padding."""
    text = _CONTROL_RE.sub("", text or "").strip()
    return text[:MAX_QUERY_LENGTH]


def prefix_q(field_name: str, prefix: str) -> Q:
    """``field`` starts with ``prefix``, as a range its B-tree index can answer.

    Where strings compare by code point (SQLite's BINARY collation, PostgreSQL's "C"), the
    range is exactly the prefix. Under a linguistic collation it is not, so a LIKE keeps the
    match exact there; it is left out elsewhere because it makes PostgreSQL's planner expect
    a handful of rows and sort every match instead of reading the index in order up to LIMIT.
    """
    q = Q(**{f"{field_name}__gte": prefix, f"{field_name}__lt": prefix + _TOP})
    if not ranges_are_prefixes():
        q &= Q(**{f"{field_name}__startswith": prefix})
    return q


_CODE_POINT_COLLATIONS = {"c", "posix", "c.utf-8", "c.utf8", "ucs_basic"}
_collation_cache: dict[str, bool] = {}


def ranges_are_prefixes() -> bool:
    """Whether the database compares these columns by code point (one query per process)."""
    if connection.vendor == "sqlite":
        return True  # the columns use BINARY, a byte (UTF-8: code point) comparison
    if connection.vendor != "postgresql":
        return False
    key = connection.settings_dict["NAME"]
    if key not in _collation_cache:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
            row = cursor.fetchone()
        _collation_cache[key] = bool(row) and row[0].lower() in _CODE_POINT_COLLATIONS
    return _collation_cache[key]


@dataclass
class Holder:
    """A tag that holds a manifest, directly or through an index (with the platform)."""

    tag: str
    platform: str = ""


@dataclass
class ManifestHit:
    """A manifest found by digest or label, in one repository that holds it."""

    repository: str
    digest: str
    kind: str
    platforms: str
    tags: list[str] = field(default_factory=list)
    #: Tags of indexes that list this manifest as a platform: (tag, platform).
    via_index: list[Holder] = field(default_factory=list)
    label_key: str = ""
    label_value: str = ""

    @property
    def url(self) -> str:
        return reference_url(self.repository, digest=self.digest)


@dataclass
class SearchResults:
    query: str
    #: The URL of the reference the query names exactly, when the user may see it.
    exact: str = ""
    exact_label: str = ""
    repositories: list[Repository] = field(default_factory=list)
    more_repositories: bool = False
    tags: list[Tag] = field(default_factory=list)
    more_tags: bool = False
    digests: list[ManifestHit] = field(default_factory=list)
    more_digests: bool = False
    labels: list[ManifestHit] = field(default_factory=list)
    more_labels: bool = False
    #: The platform the query names (``linux/arm64``), and tags of images built for it.
    platform: str = ""
    platform_tags: list[Tag] = field(default_factory=list)
    more_platform_tags: bool = False
    notes: list[str] = field(default_factory=list)
    #: ``signed:no``, ``has:sbom``, ... and packages inside SBOMs (browse.attached_search).
    attached: attached_search.AttachedResults | None = None

    @property
    def count(self) -> int:
        found = (
            len(self.repositories)
            + len(self.tags)
            + len(self.digests)
            + len(self.labels)
            + len(self.platform_tags)
        )
        return found + (self.attached.count if self.attached else 0)

    @property
    def empty(self) -> bool:
        return not self.count and not self.exact


@dataclass(frozen=True)
class _Parsed:
    """What the query text could mean, once a registry host and ``docker pull`` are removed."""

    text: str
    name: str = ""  # a valid repository name before ':' or '@'
    tag_prefix: str | None = None
    digest_prefix: str | None = None  # hex only, lowercase


def our_hosts() -> set[str]:
    hosts = {settings.REGISTRY_PUBLIC_HOST.lower()}
    hosts.add((urlsplit(settings.REGISTRY_URL).netloc or "").lower())
    return {h for h in hosts if h}


def _strip_host(text: str, notes: list[str]) -> str:
    first, slash, rest = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if re.fullmatch(DOMAIN, first):
            if first.lower() in our_hosts():
                return rest
            # A host that is not ours: the same name there is another image. Search the text
            # as typed (nothing will match the host part) and say why.
            notes.append(
                f"{first} is not this registry ({settings.REGISTRY_PUBLIC_HOST}); "
                "references to it are not searched."
            )
    return text


def _parse(text: str, notes: list[str]) -> _Parsed:
    text = _COMMAND_PREFIX_RE.sub("", text)
    text = _strip_host(text, notes)
    name = name_part(text)
    if not is_valid_name(name):
        return _Parsed(text=text)
    rest = text[len(name) :]
    before_at, at, digest_text = rest.partition("@")
    tag_prefix = before_at[1:] if before_at.startswith(":") else None
    digest_prefix = None
    if at:
        algorithm, _, hex_part = digest_text.partition(":")
        if algorithm == "sha256" and HEX_RE.match(hex_part.lower() or "0"):
            digest_prefix = hex_part.lower()
    return _Parsed(text=text, name=name, tag_prefix=tag_prefix, digest_prefix=digest_prefix)


def _exact(user, text: str) -> str:
    """The URL of the tag or digest ``text`` names, when it exists and the user may see it."""
    if not is_valid_name(name_part(text)):
        return ""
    try:
        reference = parse_reference(text, allow_domain=False)
    except InvalidReference:
        return ""
    if not (reference.tag or reference.digest):
        return ""
    # A digest pins the image: with both, it wins (as it does for `docker pull`).
    target = (
        f"{reference.name}@{reference.digest}"
        if reference.digest
        else f"{reference.name}:{reference.tag}"
    )
    try:
        resolve(user, target)
    except (Http404, PermissionDenied, BadReference):
        return ""
    return target


def search(user, text: str | None) -> SearchResults:
    query = clean_query(text)
    results = SearchResults(query=query)
    if not query:
        return results
    if attached_search.is_filter(query):
        results.attached = attached_search.search_attached(user, query)
        return results
    results.attached = attached_search.search_attached(user, query)
    parsed = _parse(query, results.notes)
    exact = _exact(user, parsed.text)
    if exact:
        results.exact, results.exact_label = reference_url(exact), exact

    # Repositories by substring of the name, or of the description people wrote.
    needle = (parsed.name or parsed.text).lower()
    by_name = _NAME_CHARS_RE.match(needle) is not None
    matching = described_as(query) | Q(name__contains=needle) if by_name else described_as(query)
    repositories = list(
        with_overview(user, visible_repositories(user, Repository.objects.filter(matching)))
        .annotate(
            rank=Case(
                When(name=needle, then=Value(0)),
                When(name__startswith=needle, then=Value(1)),
                When(name__contains=needle, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "name")[: LIMIT + 1]
    )
    results.repositories = repositories[:LIMIT]
    results.more_repositories = len(repositories) > LIMIT

    # Tags by prefix, everywhere or within the repository named before ':'.
    tag_prefix, scope = parsed.text, ""
    if parsed.tag_prefix is not None:
        tag_prefix, scope = parsed.tag_prefix, parsed.name
    if tag_prefix and is_valid_tag(tag_prefix) and not parsed.digest_prefix:
        tags = Tag.objects.filter(prefix_q("name", tag_prefix))
        if scope:
            tags = tags.filter(repository__name=scope)
        found = list(
            visible_tags(user, tags)
            .select_related("repository", "manifest")
            .only(
                "name",
                "changed_at",
                "repository__name",
                "manifest__digest",
                "manifest__total_size",
                "manifest__platforms",
                "manifest__created",
            )
            # The index's own order, so the database stops at the limit even when every
            # repository has a "latest"; the page then sorts those few by repository name.
            .order_by("name", "repository_id")[: LIMIT + 1]
        )
        results.tags = sorted(found[:LIMIT], key=lambda t: (t.name, t.repository.name))
        results.more_tags = len(found) > LIMIT

    # Digests: a full digest or a prefix of at least six hex characters.
    digest_prefix, scope = None, ""
    lowered = parsed.text.lower()
    if parsed.digest_prefix is not None:
        digest_prefix, scope = parsed.digest_prefix, parsed.name
    elif lowered.startswith("sha256:"):
        digest_prefix = lowered.removeprefix("sha256:")
    elif HEX_RE.match(lowered) and len(lowered) >= MIN_DIGEST_PREFIX:
        digest_prefix = lowered
    if digest_prefix is not None:
        if not HEX_RE.match(digest_prefix) or len(digest_prefix) < MIN_DIGEST_PREFIX:
            results.notes.append(
                f"Digest searches need at least {MIN_DIGEST_PREFIX} hex characters "
                "(sha256:3f2a9c… or 3f2a9c…)."
            )
        else:
            manifests = list(
                Manifest.objects.filter(prefix_q("digest", f"sha256:{digest_prefix[:64]}"))
                .order_by("digest")
                .values_list("id", "digest", "kind", "platforms")[: LIMIT + 1]
            )
            hits = _holders(user, manifests, scope=scope)
            results.digests = hits[:LIMIT]
            results.more_digests = len(hits) > LIMIT or len(manifests) > LIMIT

    # Label values by prefix, optionally "key=value".
    key, eq, value = parsed.text.partition("=")
    label_filter = Q()
    if eq and key and value and " " not in key:
        label_filter = Q(key=key) & prefix_q("value", value)
    elif not parsed.digest_prefix:
        label_filter = prefix_q("value", query)
    if label_filter:
        results.labels, results.more_labels = _label_hits(user, label_filter)

    platform = platform_query(query)
    if platform:
        results.platform = platform
        results.platform_tags, results.more_platform_tags = _platform_tags(user, platform)
    return results


_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "i386": "386"}
#: Rows read per platform search: the match is on a denormalised text column, so the read
#: is bounded rather than indexed; ``LIMIT`` hits are kept.
_PLATFORM_ROWS = 200


def platform_query(text: str) -> str:
    """``arm64``, ``linux/arm64``, ``linux/arm64/v8`` (any case, common aliases) → the
    platform text, lowercase; '' when the query is not a platform."""
    if not PLATFORM_RE.fullmatch(text):
        return ""
    parts = text.lower().split("/")
    return "/".join(_ALIASES.get(part, part) for part in parts)


def platform_matches(platform: str, platforms: str) -> bool:
    """Whether one of ``platforms`` ("linux/amd64, linux/arm64/v8") is ``platform``: a bare
    architecture matches any OS, ``os/arch`` any variant of it."""
    for item in (p.strip() for p in platforms.split(",")):
        parts = item.split("/")
        if "/" not in platform:
            if len(parts) > 1 and parts[1] == platform:
                return True
        elif item == platform or item.startswith(f"{platform}/"):
            return True
    return False


def _platform_tags(user, platform: str) -> tuple[list[Tag], bool]:
    """Tags (of repositories the user may see) whose image, or one of whose index's
    platforms, is built for ``platform``."""
    architecture = platform.split("/")[1] if "/" in platform else platform
    rows = list(
        visible_tags(user, Tag.objects.filter(manifest__platforms__contains=architecture))
        .select_related("repository", "manifest")
        .only(
            "name",
            "changed_at",
            "repository__name",
            "manifest__digest",
            "manifest__total_size",
            "manifest__platforms",
        )
        .order_by("repository__name", "sort_key", "name")[:_PLATFORM_ROWS]
    )
    found = [t for t in rows if platform_matches(platform, t.manifest.platforms)]
    return found[:LIMIT], len(found) > LIMIT or len(rows) == _PLATFORM_ROWS


#: Label rows read per search at most (a safety bound: every row read is one the user may see).
_LABEL_ROWS = 1000


def _shown_to(user) -> Q:
    """Label rows of images ``user`` can reach through a tag: tagged in a repository they may
    see, directly or as a platform of such an index.

    Applied in SQL before the LIMIT, so that rows of hidden images are never counted, never
    fill a window and never make another query: the answer and the number of queries depend
    on what the user may see only, and hidden label values cannot be learnt from an "N+"
    heading or from the time a search takes. Old builds no tag holds are left out the same way.
    The filter is two probes on indexed foreign keys per row of the value range, which keeps
    the range scan of ``label_value_id`` the plan, stopping at the LIMIT
    (``tests/catalog/test_search.py``). Each probe is a correlated scalar subquery (``LIMIT
    1``), not an EXISTS: PostgreSQL may run an EXISTS as a "hashed SubPlan", which reads and
    hashes every visible tag once, whatever the LIMIT (it costs the plan for the whole value
    range); a scalar subquery it runs per row only. The tags through an index are joined from
    the index entry (``indexchild_child``, then the tag's ``manifest_id``): correlated, not an
    ``IN`` over every visible tag.
    """
    direct = visible_tags(user, Tag.objects.filter(manifest_id=OuterRef("manifest_id")))
    through_index = visible_tags(
        user, Tag.objects.filter(manifest__child_links__child_id=OuterRef("manifest_id"))
    )
    return Q(_probe(direct)) | Q(_probe(through_index))


def _probe(tags) -> IsNull:
    """True when ``tags`` (correlated with the outer row) has a row: a scalar subquery."""
    return IsNull(Subquery(tags.order_by().values("pk")[:1]), False)


def _label_hits(user, label_filter: Q) -> tuple[list[ManifestHit], bool]:
    """Up to LIMIT hits in label value order, and whether there are more.

    Every row read belongs to an image the user may see, so each gives at least one hit; a
    later window is read only when several matching labels of one image (or one image shown
    in several repositories) made fewer distinct hits than rows.
    """
    # The order of the ``label_value_id`` index: the scan stops once the window is full, even
    # when tens of thousands of labels share the value (no sort of the whole range).
    labels = Label.objects.filter(label_filter).filter(_shown_to(user)).order_by("value", "id")
    hits: dict[tuple[str, str], ManifestHit] = {}
    offset, window = 0, LIMIT + 1
    while True:
        rows = list(labels.values_list("manifest_id", "key", "value")[offset : offset + window])
        found = {manifest_id: (key, value) for manifest_id, key, value in rows}
        manifests = list(
            Manifest.objects.filter(id__in=found).values_list("id", "digest", "kind", "platforms")
        )
        for hit in _holders(user, manifests, labels=found):
            hits.setdefault((hit.repository, hit.digest), hit)
        offset += len(rows)
        exhausted = len(rows) < window
        if len(hits) > LIMIT or exhausted or offset >= _LABEL_ROWS:
            return list(hits.values())[:LIMIT], len(hits) > LIMIT or not exhausted
        window = min(window * 4, _LABEL_ROWS - offset)


#: Holder rows read per search: a digest tagged in more places than this shows the first ones.
_HOLDER_ROWS = 500


def _holders(
    user,
    manifests: list[tuple[int, str, str, str]],
    *,
    scope: str = "",
    labels: dict[int, tuple[str, str]] | None = None,
) -> list[ManifestHit]:
    """One hit per (repository, manifest) the user may see, with the tags that hold it.

    Three queries whatever the numbers: tags on the manifests, index entries listing them, and
    tags on those indexes.
    """
    if not manifests:
        return []
    info = {pk: (digest, kind, platforms) for pk, digest, kind, platforms in manifests}
    hits: dict[tuple[str, int], ManifestHit] = {}

    def hit(repository: str, manifest_id: int) -> ManifestHit:
        key = (repository, manifest_id)
        if key not in hits:
            digest, kind, platforms = info[manifest_id]
            label_key, label_value = (labels or {}).get(manifest_id, ("", ""))
            hits[key] = ManifestHit(
                repository=repository,
                digest=digest,
                kind=kind,
                platforms=platforms,
                label_key=label_key,
                label_value=label_value,
            )
        return hits[key]

    direct = Tag.objects.filter(manifest_id__in=info)
    if scope:
        direct = direct.filter(repository__name=scope)
    for repository, tag, manifest_id in (
        visible_tags(user, direct)
        .order_by("repository__name", "name")
        .values_list("repository__name", "name", "manifest_id")[:_HOLDER_ROWS]
    ):
        hit(repository, manifest_id).tags.append(tag)

    entries = list(
        IndexChild.objects.filter(child_id__in=info).values_list(
            "index_id", "child_id", "os", "architecture", "variant"
        )[:_HOLDER_ROWS]
    )
    if entries:
        children_of: dict[int, list[tuple[int, str]]] = {}
        for index_id, child_id, os_name, architecture, variant in entries:
            platform = "/".join(p for p in (os_name, architecture, variant) if p)
            children_of.setdefault(index_id, []).append((child_id, platform))
        via = Tag.objects.filter(manifest_id__in=children_of)
        if scope:
            via = via.filter(repository__name=scope)
        for repository, tag, index_id in (
            visible_tags(user, via)
            .order_by("repository__name", "name")
            .values_list("repository__name", "name", "manifest_id")[:_HOLDER_ROWS]
        ):
            for child_id, platform in children_of[index_id]:
                hit(repository, child_id).via_index.append(Holder(tag, platform))
    return sorted(hits.values(), key=lambda h: (h.repository, h.digest))
