"""The command lines the pages show: log in, tag, push and pull, for docker and its cousins.

One module builds every command, so that the pages, their htmx fragments and the tests agree
on each character. Builders are pure: they take the registry's public host
(``settings.REGISTRY_PUBLIC_HOST``), names that have passed the Distribution grammar and the
user's own text (a local image name, quoted for the shell here), and return ``Command``\\ s.

Where a tool has no form of a step (podman and nerdctl push no ``--all-tags``; skopeo and
crane have no local "tag" step), the step says so in words, or is written as the commands that
do the same (one ``skopeo copy`` per tag).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models

#: The environment variable the "scripts and CI" login reads the token from.
TOKEN_VARIABLE = "REGISTRY_TOKEN"  # noqa: S105 - a variable name, not a secret

#: skopeo transports a local source may name itself; anything else is a docker daemon image.
SKOPEO_TRANSPORTS = (
    "containers-storage:",
    "dir:",
    "docker://",
    "docker-archive:",
    "docker-daemon:",
    "oci:",
    "oci-archive:",
)


class Tool(models.TextChoices):
    DOCKER = "docker", "docker"
    PODMAN = "podman", "podman"
    NERDCTL = "nerdctl", "nerdctl"
    SKOPEO = "skopeo", "skopeo"
    CRANE = "crane", "crane / oras"

    @property
    def pushes_all_tags(self) -> bool:
        """Has ``push --all-tags`` (podman and nerdctl do not)."""
        return self == Tool.DOCKER

    @property
    def pulls_all_tags(self) -> bool:
        return self in (Tool.DOCKER, Tool.PODMAN)


@dataclass(frozen=True)
class Command:
    """One line to copy, with what it does; ``text`` empty means "no such command": the note
    then says what to do instead."""

    label: str
    text: str
    id: str
    note: str = ""


@dataclass(frozen=True)
class Step:
    """A numbered step of the push guide: a heading and its commands."""

    title: str
    commands: list[Command] = field(default_factory=list)
    note: str = ""


def public_host() -> str:
    return settings.REGISTRY_PUBLIC_HOST


def image(repository: str, reference: str = "", host: str | None = None) -> str:
    """``HOST/REPO[:TAG|@DIGEST]``; ``reference`` starts with ``:`` or ``@``."""
    host = public_host() if host is None else host
    return f"{host}/{repository}{reference}" if host else f"{repository}{reference}"


def quote(text: str) -> str:
    return shlex.quote(text)


def pull_command(repository: str, reference: str = "") -> str:
    """``docker pull HOST/REPO[:TAG|@DIGEST]`` with HOST = REGISTRY_PUBLIC_HOST."""
    return f"docker pull {image(repository, reference)}"


def _last(repository: str) -> str:
    return repository.rsplit("/", 1)[-1]


def skopeo_source(source: str) -> str:
    """A local image as skopeo reads it: a reference with a transport stays as it is, a plain
    name is an image of the docker daemon (which needs a tag)."""
    if source.startswith(SKOPEO_TRANSPORTS):
        return source
    name = source.rsplit("/", 1)[-1]
    if ":" not in name and "@" not in name:
        source = f"{source}:latest"
    return f"docker-daemon:{source}"


# -- logging in -------------------------------------------------------------------------------


def login_step(tool: Tool, username: str, *, token_mode: bool, host: str | None = None) -> Step:
    host = public_host() if host is None else host
    user = quote(username) if username else "USERNAME"
    base = {
        Tool.DOCKER: "docker login",
        Tool.PODMAN: "podman login",
        Tool.NERDCTL: "nerdctl login",
        Tool.SKOPEO: "skopeo login",
        Tool.CRANE: "crane auth login",
    }[tool]
    commands = []
    if tool != Tool.CRANE:
        commands.append(
            Command(
                "Interactively",
                f"{base} {host} --username {user}",
                "login",
                "Asks for your password" + (" or a personal access token." if token_mode else "."),
            )
        )
    if token_mode or tool == Tool.CRANE:
        commands.append(
            Command(
                "From a script or CI job",
                f"printenv {TOKEN_VARIABLE} | {base} {host} --username {user} --password-stdin",
                "login-token",
                f"With a personal access token in the {TOKEN_VARIABLE} environment variable.",
            )
        )
    return Step("Log in", commands)


# -- pushing ----------------------------------------------------------------------------------


def push_steps(
    tool: Tool,
    repository: str,
    tag: str,
    source: str,
    also: Sequence[str] = (),
    host: str | None = None,
) -> list[Step]:
    """Tag a local image as ``HOST/REPOSITORY:TAG`` and push it; then the same image under the
    tags of ``also`` and every tag at once."""
    target = image(repository, f":{tag}", host)
    extra = [t for t in dict.fromkeys(also) if t != tag]
    src = quote(source)
    if tool in (Tool.DOCKER, Tool.PODMAN, Tool.NERDCTL):
        steps = [
            Step(
                "Tag and push",
                [
                    Command("Tag your image", f"{tool} image tag {src} {target}", "tag"),
                    Command("Push it", f"{tool} image push {target}", "push"),
                ],
            )
        ]
        more = [
            Command(
                f"Tag it {t}" if len(extra) > 1 else "Tag it again",
                f"{tool} image tag {src} {image(repository, f':{t}', host)}",
                f"tag-{n}",
            )
            for n, t in enumerate(extra, 1)
        ]
        if tool.pushes_all_tags:
            more.append(
                Command(
                    "Push every tag",
                    f"{tool} image push --all-tags {image(repository, '', host)}",
                    "push-all",
                    "Pushes every tag of this repository that you have locally.",
                )
            )
            note = ""
        else:
            more += [
                Command(
                    f"Push {t}",
                    f"{tool} image push {image(repository, f':{t}', host)}",
                    f"push-{n}",
                )
                for n, t in enumerate(extra, 1)
            ]
            note = f"{tool} has no push --all-tags: push each tag."
        steps.append(Step("Several tags on one image", more, note))
        return steps
    if tool == Tool.SKOPEO:
        source_ref = quote(skopeo_source(source))
        first = Command(
            "Copy your image to the registry",
            f"skopeo copy --all {source_ref} docker://{target}",
            "push",
            "skopeo reads the image where it is (a plain name: the docker daemon's; or "
            "oci:DIR:TAG, containers-storage:NAME …), needs no tag step, and with --all "
            "copies every platform of a multi-platform image.",
        )
        more = [
            Command(
                f"Copy it as {t}",
                f"skopeo copy --all {source_ref} docker://{image(repository, f':{t}', host)}",
                f"push-{n}",
            )
            for n, t in enumerate(extra, 1)
        ]
        return [
            Step("Push", [first]),
            Step(
                "Several tags on one image",
                more,
                "skopeo has no --all-tags: one copy per tag (layers already there are not "
                "uploaded again).",
            ),
        ]
    # crane pushes a tarball (docker save) or an OCI layout, then tags in the registry.
    return [
        Step(
            "Push",
            [
                Command(
                    "Save your image",
                    f"docker image save {src} --output {quote(_last(repository))}.tar",
                    "save",
                ),
                Command(
                    "Push it",
                    f"crane push {quote(_last(repository))}.tar {target}",
                    "push",
                    "crane push also reads an OCI layout directory.",
                ),
            ],
        ),
        Step(
            "Several tags on one image",
            (
                [
                    Command(
                        "Add the tags in the registry (oras)",
                        f"oras tag {target} {' '.join(extra)}",
                        "push-all",
                    )
                ]
                + [
                    Command(f"Tag {t} (crane)", f"crane tag {target} {t}", f"push-{n}")
                    for n, t in enumerate(extra, 1)
                ]
            )
            if extra
            else [],
            "crane and oras tag in the registry: nothing is uploaded again.",
        ),
    ]


# -- pulling ----------------------------------------------------------------------------------


def pull(tool: Tool, repository: str, reference: str, host: str | None = None) -> str:
    """Pull one image by ``:TAG`` or ``@DIGEST`` (skopeo: into an OCI layout in the current
    directory; crane: into a tarball)."""
    ref = image(repository, reference, host)
    if tool == Tool.SKOPEO:
        local = _last(repository)
        suffix = f":{reference[1:]}" if reference.startswith(":") else ""
        return f"skopeo copy docker://{ref} oci:{local}{suffix}"
    if tool == Tool.CRANE:
        return f"crane pull {ref} {_last(repository)}.tar"
    return f"{tool} pull {ref}"


def pull_all_tags(tool: Tool, repository: str, host: str | None = None) -> Command:
    ref = image(repository, "", host)
    if tool.pulls_all_tags:
        return Command("Pull every tag", f"{tool} pull --all-tags {ref}", "pull-all-tags")
    if tool == Tool.SKOPEO:
        return Command(
            "Pull every tag",
            f"skopeo sync --src docker --dest dir {ref} {_last(repository)}-tags",
            "pull-all-tags",
            "One directory per tag.",
        )
    return Command(
        "Pull every tag",
        "",
        "pull-all-tags",
        f"{tool.label} has no all-tags pull: pull each tag.",
    )


def pull_platform(
    tool: Tool, repository: str, digest: str, platform: str, host: str | None = None
) -> str:
    """Pull one platform of a multi-platform index by the index's digest."""
    ref = image(repository, f"@{digest}", host)
    if tool == Tool.SKOPEO:
        parts = platform.split("/")
        flags = [f"--override-os {quote(parts[0])}"]
        if len(parts) > 1:
            flags.append(f"--override-arch {quote(parts[1])}")
        if len(parts) > 2:
            flags.append(f"--override-variant {quote(parts[2])}")
        local = f"{_last(repository)}:{'-'.join(parts)}"
        return f"skopeo copy {' '.join(flags)} docker://{ref} oci:{local}"
    if tool == Tool.CRANE:
        return f"crane pull --platform {quote(platform)} {ref} {_last(repository)}.tar"
    return f"{tool} pull --platform {quote(platform)} {ref}"


def repository_pull_commands(
    tool: Tool, repository: str, tag: str | None, host: str | None = None
) -> list[Command]:
    """The repository page's pull commands: one tag (``tag``; None: no tags yet) and every tag."""
    commands = []
    if tag:
        commands.append(
            Command(f"Pull {tag}", pull(tool, repository, f":{tag}", host), "pull-repository")
        )
    commands.append(pull_all_tags(tool, repository, host))
    return commands


def manifest_commands(
    repository: str,
    digest: str,
    tag: str | None = None,
    platforms: Iterable[tuple[str, str]] = (),
    tool: Tool = Tool.DOCKER,
) -> list[Command]:
    """A tag or digest page's pull commands: by tag, by digest, and, for a multi-platform index,
    each platform by the index's digest with ``--platform`` and by its own digest.

    ``platforms``: (platform, digest of its image) of each entry of the index.
    """
    commands = []
    if tag is not None:
        commands.append(Command("Pull by tag", pull(tool, repository, f":{tag}"), "pull-tag"))
    commands.append(Command("Pull by digest", pull(tool, repository, f"@{digest}"), "pull-digest"))
    for n, (platform, child) in enumerate(platforms, 1):
        if not platform:
            continue
        commands.append(
            Command(
                f"Pull {platform}",
                pull_platform(tool, repository, digest, platform),
                f"pull-platform-{n}",
            )
        )
        commands.append(
            Command(
                f"Pull {platform} by its own digest",
                pull(tool, repository, f"@{child}"),
                f"pull-platform-digest-{n}",
            )
        )
    return commands
