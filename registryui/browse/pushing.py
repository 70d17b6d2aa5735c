"""Push and pull guidance for one user: where they may push, whom to ask, what to type.

Everything about access comes from the resolver (``teams.permissions``) and the grant globs
(``teams.patterns``): the names shown are derived from the user's own patterns (``team-a/*``
→ ``team-a/<name>``), never from the catalog, so nothing here tells a user about a repository
they may not see. The command lines are ``browse.commands``'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from registryui.catalog.models import Repository, Tag
from registryui.lib.reference import is_valid_name, is_valid_tag
from registryui.teams.models import Level
from registryui.teams.patterns import covers, is_literal, literal_prefix
from registryui.teams.permissions import access_for, can, visible_repositories, visible_tags

from . import commands
from .commands import Command, Step, Tool

#: A new repository's name in examples, after the namespace.
EXAMPLE_NAME = "myapp"
#: At most this many people are named as the ones to ask for push access.
CONTACTS_LIMIT = 5
#: Tags a user may type at once in "also tag it".
ALSO_LIMIT = 20


@dataclass(frozen=True)
class PushTarget:
    """Where a user may push, from one grant pattern: an exact name, a namespace, or a glob."""

    pattern: str

    @property
    def exact(self) -> bool:
        return is_literal(self.pattern)

    @property
    def prefix(self) -> str:
        """``team-a/`` for ``team-a/*``; empty for a glob that is not one ``prefix*``."""
        head = literal_prefix(self.pattern)
        return head if self.pattern == f"{head}*" else ""

    @property
    def shown(self) -> str:
        """``team-a/<name>``, ``hello``, ``<name>`` (``*``) or the glob itself."""
        if self.exact:
            return self.pattern
        if self.pattern == f"{self.prefix}*":
            return f"{self.prefix}<name>"
        return self.pattern

    @property
    def example(self) -> str:
        """A name the user may push to under this pattern (for the form's default)."""
        if self.exact:
            return self.pattern
        if self.pattern == f"{self.prefix}*":
            return f"{self.prefix}{EXAMPLE_NAME}"
        return ""


def push_targets(user) -> list[PushTarget]:
    """The patterns on which the user may push, exact names first, then by name."""
    if not getattr(user, "is_authenticated", False):
        return []  # an anonymous visitor never pushes, whatever the public patterns say
    patterns = access_for(user).patterns_at(Level.PUSH)
    return sorted((PushTarget(p) for p in patterns), key=lambda t: (not t.exact, t.pattern))


def may_push_somewhere(user) -> bool:
    """Whether the user may push to some repository (by their rules): "Copy to repository"
    is offered only then. An anonymous visitor's rules never reach push."""
    return bool(access_for(user).patterns_at(Level.PUSH))


def has_any_access(user) -> bool:
    """Whether the user may see some repository (by their rules, not by what exists)."""
    return bool(access_for(user).patterns_at(Level.VIEW))


def push_contacts(user) -> list[str]:
    """Whom to ask for push access: admins of the user's own teams; else admins whose
    patterns cover what the user may see; else the superusers. User names only, one query."""
    access = access_for(user)
    viewed = access.patterns_at(Level.VIEW)
    people = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(registry_teams__grants__level__gte=Level.ADMIN))
    )
    if getattr(user, "pk", None) is not None:
        people = people.exclude(pk=user.pk)
    rows = people.values_list(
        "username",
        "is_superuser",
        "registry_teams__id",
        "registry_teams__grants__pattern",
        "registry_teams__grants__level",
    )
    own: set[str] = set()
    covering: set[str] = set()
    superusers: set[str] = set()
    for username, superuser, team_id, pattern, level in rows:
        if superuser:
            superusers.add(username)
        if pattern is None or level is None or level < Level.ADMIN:
            continue
        if team_id in access.team_ids:
            own.add(username)
        elif any(covers(pattern, p) for p in viewed):
            covering.add(username)
    return sorted(own or covering or superusers)[:CONTACTS_LIMIT]


# -- what the user typed --------------------------------------------------------------------


class GuideForm(forms.Form):
    """The push guide's inputs (a GET form: the page works without JavaScript)."""

    name = forms.CharField(required=False, max_length=255, label="Repository")
    source = forms.CharField(
        required=False, max_length=512, label="Your local image", empty_value=""
    )
    tag = forms.CharField(required=False, max_length=128, label="Tag")
    also = forms.CharField(required=False, max_length=2000, label="Also tag it as")
    tool = forms.ChoiceField(required=False, choices=Tool.choices, label="Tool")
    #: "push": the repository page's panel asks for the push commands (its pull commands are
    #: swapped out of band, see _push_commands.html).
    part = forms.ChoiceField(required=False, choices=[("", "all"), ("push", "push")])

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip().strip("/")
        if name and not is_valid_name(name):
            raise forms.ValidationError(
                "A repository name is lowercase letters, digits and . _ - separators, "
                "in components joined by /."
            )
        return name

    def clean_source(self) -> str:
        source = self.cleaned_data["source"].strip()
        if any(ch.isspace() or not ch.isprintable() for ch in source):
            raise forms.ValidationError("A local image name has no spaces.")
        return source

    def clean_tag(self) -> str:
        tag = self.cleaned_data["tag"].strip()
        if tag and not is_valid_tag(tag):
            raise forms.ValidationError(
                "A tag is up to 128 letters, digits, _ . and -, not starting with . or -."
            )
        return tag

    def clean_also(self) -> list[str]:
        tags = list(dict.fromkeys(self.cleaned_data["also"].replace(",", " ").split()))
        bad = [t for t in tags if not is_valid_tag(t)]
        if bad:
            raise forms.ValidationError(f"Not a tag: {', '.join(bad[:5])}.")
        if len(tags) > ALSO_LIMIT:
            raise forms.ValidationError(f"At most {ALSO_LIMIT} tags at once.")
        return tags

    def clean_tool(self) -> str:
        return self.cleaned_data["tool"] or Tool.DOCKER


@dataclass
class Guide:
    """Everything the push panel and /push/ show, for one user and one repository name."""

    user: object
    name: str
    tag: str
    source: str
    also: list[str]
    tool: Tool
    form: GuideForm
    part: str = ""
    #: The tag the pull commands name when the repository exists (``pull_tag_of``).
    pull_tag: str | None = None
    targets: list[PushTarget] = field(default_factory=list)

    @property
    def typed(self) -> bool:
        """The user filled in the form (the panel's push box then opens)."""
        return bool(set(self.form.data) & {"source", "tag", "also", "tool"})

    @property
    def host(self) -> str:
        return commands.public_host()

    @property
    def token_mode(self) -> bool:
        return settings.TOKEN_AUTH_ENABLED

    @property
    def username(self) -> str:
        return self.user.get_username() if getattr(self.user, "is_authenticated", False) else ""

    @property
    def may_push(self) -> bool:
        # An anonymous visitor never pushes, whatever the public patterns say.
        signed_in = getattr(self.user, "is_authenticated", False)
        return bool(self.name) and signed_in and can(self.user, Level.PUSH, self.name)

    @property
    def may_pull(self) -> bool:
        return bool(self.name) and can(self.user, Level.VIEW, self.name)

    @property
    def tools(self) -> list[tuple[str, str]]:
        return list(Tool.choices)

    def login(self) -> Step:
        return commands.login_step(self.tool, self.username, token_mode=self.token_mode)

    def push(self) -> list[Step]:
        if not self.may_push:
            return []
        return commands.push_steps(self.tool, self.name, self.tag, self.source, self.also)

    def pull(self) -> list[Command]:
        if not self.may_pull:
            return []
        tag = self.pull_tag if self.pull_tag is not None else self.tag
        return commands.repository_pull_commands(self.tool, self.name, tag)

    @property
    def contacts(self) -> list[str]:
        return push_contacts(self.user)

    @property
    def any_access(self) -> bool:
        return has_any_access(self.user)


def default_name(user) -> str:
    """The /push/ form's first repository: a name the user may push to, else one they see."""
    for target in push_targets(user):
        if target.example:
            return target.example
    first = visible_repositories(user).order_by("name").values_list("name", flat=True).first()
    return first or ""


def pull_tag_of(user, repository: Repository | str) -> str | None:
    """The tag a repository's pull command names: ``latest``, else the newest tag that names
    an image, not a signature or SBOM; None when the user may not see it or it has no tags
    (the guide's tag is used). Two index look-ups: ``latest`` by name, then the newest tags
    in ``changed_at`` order up to the first image (never a sort of all the tags)."""
    name = getattr(repository, "name", repository)
    if not name or not can(user, Level.VIEW, name):
        return None
    tags = (
        repository.tags.all()
        if isinstance(repository, Repository)
        else visible_tags(user, Tag.objects.filter(repository__name=name))
    )
    images = tags.images()
    if images.filter(name="latest").exists():
        return "latest"
    return images.order_by("-changed_at").values_list("name", flat=True).first()


def build_guide(user, data, *, repository: Repository | None = None) -> Guide:
    """A guide from the GET parameters ``data``; ``repository`` fixes it (its page)."""
    form = GuideForm(data or None)
    cleaned: dict = {}
    if form.is_bound and form.is_valid():
        cleaned = form.cleaned_data
    elif form.is_bound:
        # Keep what was valid, so one bad field does not blank the others.
        cleaned = {k: v for k, v in getattr(form, "cleaned_data", {}).items()}
    name = repository.name if repository else cleaned.get("name") or default_name(user)
    tag = cleaned.get("tag") or "latest"
    source = cleaned.get("source") or name.rsplit("/", 1)[-1] or EXAMPLE_NAME
    tool = Tool(cleaned.get("tool") or Tool.DOCKER)
    return Guide(
        user=user,
        name=name,
        tag=tag,
        source=source,
        also=cleaned.get("also") or [],
        tool=tool,
        form=form,
        part=cleaned.get("part") or "",
        pull_tag=pull_tag_of(user, repository or name),
        targets=push_targets(user),
    )
