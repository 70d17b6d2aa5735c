"""Deciding what a deletion does in one repository, before anything reaches the registry.

Registry 2.8 deletes by digest, and a digest deletion takes every tag of the repository that
points at it. So for each tag asked to go, the planner decides between:

* **deleting the image** (its digest): when no tag that stays points at that digest and no
  index that stays lists it. Every tag on it goes (they were all asked to go), and so do the
  platform manifests of a deleted index that nothing else in the repository uses: on 2.8,
  deleting an index leaves its children linked in the repository and garbage-collect keeps
  linked manifests, so without this the space would never come back;
* **removing just the tag** (``DELETE`` by tag on 3.x, a throw-away manifest on 2.8): when a
  sibling tag stays on the digest, or an index that stays lists it. Nothing is freed.

``compute`` works on plain mappings (tag → digest) so that the same rules apply to the
database's view (the confirmation page) and to the registry's view right before acting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from registryui.catalog.artifacts import scheme_subject
from registryui.catalog.models import ApiReferrer, IndexChild, Manifest, Repository
from registryui.lib.iters import chunked
from registryui.lib.natural import natural_sorted

from .freed import Freed, estimate_freed

ChildrenOf = Callable[[str], Sequence[str]]
#: An image digest → the digests of what is attached to it (signatures, SBOMs, ...).
ReferrersOf = Callable[[str], Sequence[str]]


@dataclass
class RawPlan:
    """The decision in digests and tag names only."""

    #: digest → the tags that go with it (in the order asked); indexes first.
    images: dict[str, list[str]] = field(default_factory=dict)
    #: digest of a deleted index → its platform manifests that nothing else uses.
    children: dict[str, list[str]] = field(default_factory=dict)
    #: Tags removed alone: their digest stays.
    tag_removals: list[str] = field(default_factory=list)
    #: Asked for, but not in the repository.
    missing: list[str] = field(default_factory=list)
    #: Every digest still linked after the plan: tagged, or listed by a tagged index.
    live: set[str] = field(default_factory=set)
    #: digest of a deleted image → what was attached to it (signatures, SBOMs, attestations),
    #: deleted after it: they are useless without it.
    referrers: dict[str, list[str]] = field(default_factory=dict)
    #: digest of a deleted referrer → its tags (cosign's ``sha256-….sig``, ...), which go too.
    referrer_tags: dict[str, list[str]] = field(default_factory=dict)

    @property
    def deleted_digests(self) -> list[str]:
        found = list(self.images)
        for children in self.children.values():
            found.extend(children)
        for referrers in self.referrers.values():
            found.extend(referrers)
        return found


def closure(digests: Iterable[str], children_of: ChildrenOf) -> set[str]:
    """The digests with, recursively, the children of the indexes among them."""
    seen: set[str] = set()
    stack = list(digests)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        stack.extend(children_of(digest))
    return seen


def compute(
    tags: Mapping[str, str],
    remove: Iterable[str],
    children_of: ChildrenOf,
    referrers_of: ReferrersOf | None = None,
) -> RawPlan:
    """Plan the removal of ``remove`` from a repository whose tags are ``tags``.

    With ``referrers_of``, what is attached to a deleted image goes with it (after it),
    unless a tag that is not itself an attachment of a deleted image keeps it."""
    plan = RawPlan()
    wanted: list[str] = []
    for name in dict.fromkeys(remove):
        (wanted if name in tags else plan.missing).append(name)
    going = set(wanted)
    plan.live = closure({d for t, d in tags.items() if t not in going}, children_of)

    images: dict[str, list[str]] = {}
    for name in wanted:
        digest = tags[name]
        if digest in plan.live:
            plan.tag_removals.append(name)
        else:
            images.setdefault(digest, []).append(name)

    # An index goes before the images it lists, so that no index is ever left pointing at
    # a deleted platform manifest, even for a moment.
    with_children = {d: list(children_of(d)) for d in images}
    plan.images = {
        digest: natural_sorted(names)
        for digest, names in sorted(images.items(), key=lambda item: not with_children[item[0]])
    }
    claimed = set(plan.images)
    for digest in plan.images:
        orphans = [
            child
            for child in sorted(closure(with_children[digest], children_of))
            if child not in plan.live and child not in claimed
        ]
        claimed.update(orphans)
        if orphans:
            plan.children[digest] = orphans
    if referrers_of is not None:
        _add_referrers(plan, tags, going, claimed, children_of, referrers_of)
    return plan


def _add_referrers(
    plan: RawPlan,
    tags: Mapping[str, str],
    going: set[str],
    claimed: set[str],
    children_of: ChildrenOf,
    referrers_of: ReferrersOf,
) -> None:
    deleted = list(claimed)
    attached = {d: [r for r in referrers_of(d) if r not in claimed] for d in deleted}
    attached = {d: rs for d, rs in attached.items() if rs}
    if not attached:
        return
    by_digest: dict[str, list[str]] = {}
    for name, digest in tags.items():
        by_digest.setdefault(digest, []).append(name)
    # A referrer's own tags (``sha256-….sig``, or any tag on a manifest whose subject is the
    # image) keep nothing once its image goes; any other staying tag keeps what it reaches
    # (an index that lists the referrer, say).
    referrer_digests = {r for rs in attached.values() for r in rs}
    keeping = {d for name, d in tags.items() if name not in going and d not in referrer_digests}
    live = closure(keeping, children_of)
    for subject, referrers in attached.items():
        going_with = [r for r in dict.fromkeys(referrers) if r not in live and r not in claimed]
        claimed.update(going_with)
        if going_with:
            plan.referrers[subject] = going_with
            for referrer in going_with:
                plan.referrer_tags[referrer] = sorted(by_digest.get(referrer, []))


class DatabaseReferrers:
    """``referrers_of`` for one repository: the tags of cosign's scheme in ``tags`` (by name,
    so the registry's own tags list works too), tagged manifests whose ``subject`` is the
    image (known by digest: content-addressed), and rows of the referrers API.

    ``subjects`` (digest → subject digest, for the tagged digests that have one) saves the
    query when the caller read them already; ``api=False`` skips the referrers API's rows
    (none exist where the registry does not answer it)."""

    def __init__(
        self,
        repository: Repository,
        tags: Mapping[str, str],
        *,
        subjects: Mapping[str, str] | None = None,
        api: bool = True,
    ) -> None:
        self._by_subject: dict[str, list[str]] = {}
        for name, digest in tags.items():
            subject = scheme_subject(name)
            if subject:
                self._by_subject.setdefault(subject, []).append(digest)
        if subjects is None:
            found: dict[str, str] = {}
            for chunk in chunked(set(tags.values())):
                rows = Manifest.objects.filter(digest__in=chunk).exclude(subject_digest="")
                found.update(rows.values_list("digest", "subject_digest"))
            subjects = found
        for digest, subject in subjects.items():
            if subject:
                self._by_subject.setdefault(subject, []).append(digest)
        if api:
            rows = ApiReferrer.objects.filter(repository=repository).values_list(
                "subject_digest", "manifest__digest"
            )
            for subject, digest in rows:
                self._by_subject.setdefault(subject, []).append(digest)

    def __call__(self, digest: str) -> Sequence[str]:
        return list(dict.fromkeys(self._by_subject.get(digest, ())))


class DatabaseChildren:
    """``children_of`` from the database, loaded in one query for a set of digests.

    ``fallback`` is asked for digests the database has never seen (a tag re-pushed since
    the last sync); without one they count as having no children.
    """

    def __init__(self, digests: Iterable[str], fallback: ChildrenOf | None = None) -> None:
        self.fallback = fallback
        self._known: set[str] = set()
        self._children: dict[str, list[str]] = {}
        self.load(digests)

    def load(self, digests: Iterable[str]) -> None:
        todo = set(digests) - self._known
        if not todo:
            return
        for chunk in chunked(todo):
            self._known.update(
                Manifest.objects.filter(digest__in=chunk).values_list("digest", flat=True)
            )
            rows = (
                IndexChild.objects.filter(index__digest__in=chunk)
                .order_by("index_id", "position")
                .values_list("index__digest", "child__digest")
            )
            for index_digest, child_digest in rows:
                self._children.setdefault(index_digest, []).append(child_digest)
        # Children are rows too: load them so that nested indexes resolve without a query each.
        children = {c for cs in self._children.values() for c in cs} - self._known
        if children:
            self.load(children)

    def __call__(self, digest: str) -> Sequence[str]:
        if digest not in self._known:
            if self.fallback is None:
                return ()
            found = list(self.fallback(digest))
            self._known.add(digest)
            self._children[digest] = found
            return found
        return self._children.get(digest, ())


def repository_tags(repository: Repository) -> dict[str, str]:
    """The repository's tags as the database knows them: name → digest."""
    return dict(
        repository.tags.order_by("sort_key", "name").values_list("name", "manifest__digest")
    )


@dataclass
class ImageDeletion:
    digest: str
    tags: list[str]
    manifest: Manifest | None
    #: Untagged platform manifests of this index deleted right after it.
    children: list[Manifest | str] = field(default_factory=list)
    #: Signatures, SBOMs and attestations of this image, deleted right after it (and after
    #: its children).
    referrers: list[Manifest | str] = field(default_factory=list)
    #: The tags of those referrers (cosign's ``sha256-….sig``, ...), which go with them.
    referrer_tags: list[str] = field(default_factory=list)

    @property
    def is_index(self) -> bool:
        return self.manifest is not None and self.manifest.is_index

    @property
    def child_digests(self) -> list[str]:
        return [c.digest if isinstance(c, Manifest) else c for c in self.children]

    @property
    def referrer_digests(self) -> list[str]:
        return [r.digest if isinstance(r, Manifest) else r for r in self.referrers]


@dataclass
class TagRemoval:
    tag: str
    digest: str
    manifest: Manifest | None
    #: Tags that stay on the same digest.
    siblings: list[str] = field(default_factory=list)
    #: Tags of indexes that stay and list this digest as a platform.
    held_by: list[str] = field(default_factory=list)


@dataclass
class DeletionPlan:
    """What deleting some tags of one repository does, with the rows to show it."""

    repository: Repository
    raw: RawPlan
    tags: dict[str, str]
    images: list[ImageDeletion]
    tag_removals: list[TagRemoval]

    @cached_property
    def freed(self) -> Freed:
        """The bytes garbage-collect gives back, estimated when first asked: pages show it, but
        a plan about to be carried out (or a dry run from cron) has no use for it, and each
        estimate reads every manifest that shares a blob with the deleted ones."""
        return estimate_freed({self.repository.pk: self.raw.deleted_digests})

    @property
    def missing(self) -> list[str]:
        return self.raw.missing

    @property
    def tags_going(self) -> list[str]:
        names = [t for image in self.images for t in image.tags]
        names.extend(r.tag for r in self.tag_removals)
        return names

    @property
    def referrer_count(self) -> int:
        return sum(len(image.referrers) for image in self.images)

    @property
    def expected(self) -> dict[str, str]:
        """Tag → digest, as confirmed: what the action re-checks against the registry."""
        return {name: self.tags[name] for name in self.tags_going}

    @property
    def child_count(self) -> int:
        return sum(len(image.children) for image in self.images)

    @property
    def empty(self) -> bool:
        return not self.images and not self.tag_removals


def build_plan(
    repository: Repository,
    remove: Iterable[str],
    *,
    tags: Mapping[str, str] | None = None,
    children_of: ChildrenOf | None = None,
    referrers_of: ReferrersOf | None = None,
) -> DeletionPlan:
    """Plan from the database (or from ``tags`` the registry just gave), with rows and bytes.
    What is attached to a deleted image goes with it (``ImageDeletion.referrers``)."""
    tags = dict(tags if tags is not None else repository_tags(repository))
    if children_of is None:
        children_of = DatabaseChildren(tags.values())
    if referrers_of is None:
        referrers_of = DatabaseReferrers(repository, tags)
    raw = compute(tags, remove, children_of, referrers_of)
    digests = set(raw.deleted_digests) | {tags[t] for t in raw.tag_removals}
    manifests = {m.digest: m for m in Manifest.objects.filter(digest__in=digests)}
    images = [
        ImageDeletion(
            digest=digest,
            tags=names,
            manifest=manifests.get(digest),
            children=[manifests.get(c, c) for c in raw.children.get(digest, [])],
            referrers=[manifests.get(r, r) for r in raw.referrers.get(digest, [])],
            referrer_tags=sorted(
                t for r in raw.referrers.get(digest, []) for t in raw.referrer_tags.get(r, [])
            ),
        )
        for digest, names in raw.images.items()
    ]
    going = {t for image in images for t in image.tags} | set(raw.tag_removals)
    going |= {t for image in images for t in image.referrer_tags}
    staying = {t: d for t, d in tags.items() if t not in going}
    removals = []
    for name in natural_sorted(raw.tag_removals):
        digest = tags[name]
        removals.append(
            TagRemoval(
                tag=name,
                digest=digest,
                manifest=manifests.get(digest),
                siblings=natural_sorted(t for t, d in staying.items() if d == digest),
                held_by=natural_sorted(
                    t
                    for t, d in staying.items()
                    if d != digest and digest in closure(children_of(d), children_of)
                ),
            )
        )
    return DeletionPlan(
        repository=repository, raw=raw, tags=tags, images=images, tag_removals=removals
    )


def holding_indexes(repository: Repository, digest: str) -> list[tuple[str, list[str]]]:
    """Tagged indexes of the repository that list ``digest``: [(index digest, its tags)]."""
    tags = repository_tags(repository)
    children_of = DatabaseChildren(tags.values())
    by_index: dict[str, list[str]] = {}
    for name, index_digest in tags.items():
        if index_digest != digest and digest in closure(children_of(index_digest), children_of):
            by_index.setdefault(index_digest, []).append(name)
    return sorted(by_index.items(), key=lambda item: item[1])
