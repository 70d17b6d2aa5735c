"""Removing one tag on registry 2.8, trusting nothing the registry reports without a check.

Registry 2.8 cannot delete a tag, only a digest (with every tag on it). So the tag is pointed
at a unique throw-away manifest (``placeholder``), and that digest is deleted. The sequence is
three requests that can each fail, be applied and still answer an error, or be answered by a
proxy that lies, while someone may push to the same tag. The rules:

* The only digest this sequence ever deletes is the placeholder's, computed here from the bytes
  sent. A ``Docker-Content-Digest`` that disagrees with it stops the sequence: never delete by
  a digest the registry merely reports.
* Before anything is changed, the exact bytes of the confirmed image are in hand (the stored
  copy, or fetched by digest and checked), so that the tag can always be put back.
* After the PUT the tag is read back (HEAD) and must serve the placeholder; after the DELETE it
  must be gone. Push events the UI recorded during the sequence are looked at too: a push that
  the placeholder overwrote is put back on the tag (its manifest stays in the registry, only
  untagged, so its bytes can be fetched by digest).
* After any failure or surprise, the registry's state is read back and the tag rolled back to
  the confirmed image; the placeholder is deleted (it is untagged by then, so deleting it takes
  nothing else) or, if that fails, named in the report.

``remove_with_placeholder`` returns an ``Untagged`` that says what the registry now holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from registryui.catalog.models import Manifest
from registryui.lib.reference import short_digest
from registryui.registry import ManifestRef, RegistryClient, RegistryError
from registryui.registry.client import sha256_digest

from . import placeholder
from .messages import describe
from .outcomes import Result


@dataclass
class Untagged:
    """What became of the tag. ``result``: DONE (the tag is gone), GONE (it was gone already),
    CHANGED (it points at another image: a push won, or was put back), FAILED (it points at
    the confirmed image again, or its state is unknown: see ``message``)."""

    result: Result
    message: str = ""
    #: The digest the tag points at now ('' when gone or unknown).
    now: str = ""
    #: Set when a pushed image lost its tag and could not be put back: {"tag", "digest"}.
    restore: dict[str, str] = field(default_factory=dict)
    #: True when the registry stopped answering: the rest of the action should stop too.
    stop: bool = False
    code: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: How the tag was removed: "tag" (3.x) or "placeholder" (2.8).
    method: str = ""


class _Trouble(Exception):
    """Something went wrong mid-sequence; ``problem`` says what, in words."""

    def __init__(self, problem: str, exc: RegistryError | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.exc = exc


def original_bytes(client: RegistryClient, name: str, digest: str) -> tuple[bytes, str]:
    """The exact manifest bytes of ``digest`` and their media type: the stored copy when it
    hashes to the digest, else fetched by digest (the client checks the bytes)."""
    manifest = Manifest.objects.filter(digest=digest).only("raw", "media_type").first()
    if manifest is not None and manifest.raw:
        body = manifest.raw.encode("utf-8", errors="surrogateescape")
        if sha256_digest(body) == digest:
            return body, manifest.media_type
    ref, body = client.get_manifest(name, digest)
    if sha256_digest(body) != digest:
        raise RegistryError(
            "The registry sent content that does not match its digest.", code="INVALID_RESPONSE"
        )
    return body, ref.media_type


@dataclass
class Sequence:
    """One run of the throw-away sequence for ``tag``, confirmed on ``digest``."""

    client: RegistryClient
    name: str
    tag: str
    digest: str
    #: Digests pushed to the tag since a moment, as the UI recorded them (newest first).
    pushes_since: Callable[[str, str, datetime], list[str]] = lambda name, tag, since: []
    original: tuple[bytes, str] = (b"", "")
    throwaway: placeholder.Placeholder | None = None
    started: datetime = field(default_factory=timezone.now)

    @property
    def placeholder_digest(self) -> str:
        assert self.throwaway is not None
        return self.throwaway.digest

    # -- the happy path, with a check after each step ---------------------------------------

    def run(self) -> Untagged:
        """Point the tag at a fresh placeholder and delete it. Raises ``RegistryError`` only
        while nothing has been changed yet (the caller reports "nothing was changed")."""
        self.original = original_bytes(self.client, self.name, self.digest)
        self.throwaway = placeholder.build(self.name, self.tag)
        self.client.upload_blob(self.name, self.throwaway.config)
        # The last look before the tag is pointed elsewhere: never clobber a fresh push.
        self.started = timezone.now()
        try:
            ref = self.client.head_manifest(self.name, self.tag)
        except RegistryError as exc:
            if not exc.missing:
                raise  # nothing has been changed yet
            ref = None
        if ref is None:
            return Untagged(Result.GONE, "already gone")
        if ref.digest != self.digest:
            return self._changed(ref.digest)
        try:
            self._put_placeholder()
            self._check_no_push_overwritten()
            self._delete_placeholder()
        except _Trouble as trouble:
            return self.settle(trouble)
        return self._finished()

    def _put_placeholder(self) -> None:
        assert self.throwaway is not None
        expected = self.throwaway.digest
        try:
            reported = self.client.put_manifest(
                self.name, self.tag, self.throwaway.manifest, self.throwaway.media_type
            )
        except RegistryError as exc:
            raise _Trouble(
                f"the registry answered the placeholder's upload with an error ({describe(exc)})",
                exc,
            ) from exc
        if reported != expected:
            raise _Trouble(
                f"the registry reported the digest {short_digest(reported)} for the placeholder "
                f"Registry UI sent, whose bytes give {short_digest(expected)}; Registry UI "
                "deletes only by a digest it can check"
            )
        ref = self._head(self.tag, trouble="reading the tag back after the placeholder's upload")
        if ref is None or ref.digest != expected:
            now = short_digest(ref.digest) if ref else "nothing"
            raise _Trouble(
                f"after the placeholder's upload the tag serves {now}, not the placeholder"
            )

    def _check_no_push_overwritten(self) -> None:
        pushed = self._pushed()
        if pushed:
            raise _Trouble(
                f"{self.tag} was pushed ({short_digest(pushed)}) while it was being deleted"
            )

    def _delete_placeholder(self) -> None:
        try:
            self.client.delete_manifest(self.name, self.placeholder_digest)
        except RegistryError as exc:
            raise _Trouble(f"deleting the placeholder failed ({describe(exc)})", exc) from exc

    def _finished(self) -> Untagged:
        """The DELETE said yes: the tag must be gone now, and no push may have been lost."""
        try:
            ref = self._head(self.tag)
        except _Trouble:
            # Both steps were answered with success: trust them, but say the check failed.
            return Untagged(
                Result.DONE,
                details={"verified": False},
                message="(the registry did not answer the check afterwards)",
            )
        if ref is not None and ref.digest != self.placeholder_digest:
            if ref.digest == self.digest:
                return self.settle(_Trouble(f"{self.tag} still points at the image afterwards"))
            # A push after our upload: the tag holds that image, which we never touched.
            return self._changed(ref.digest, during=True)
        if ref is not None:
            return self.settle(_Trouble("the placeholder was still on the tag afterwards"))
        pushed = self._pushed()
        if pushed:
            return self._put_back_pushed(pushed, "")
        return Untagged(Result.DONE)

    # -- recovery -----------------------------------------------------------------------------

    def settle(self, trouble: _Trouble) -> Untagged:
        """Read the registry back and roll the tag back to the confirmed image (or to an image
        pushed meanwhile); delete the placeholder once nothing points at it."""
        code = trouble.exc.code if trouble.exc else "REFUSED"
        problem = trouble.problem[:1].upper() + trouble.problem[1:]
        try:
            ref = self._head(self.tag)
        except _Trouble:
            return Untagged(
                Result.FAILED,
                f"{problem}. The registry then stopped answering, so what {self.tag} points at "
                "is unknown: it may serve the placeholder "
                f"{short_digest(self.placeholder_digest)}. "
                "Look at the tag when the registry answers again, and delete it again if needed.",
                stop=True,
                code=code,
                details={"placeholder": self.placeholder_digest, "state": "unknown"},
            )
        now = ref.digest if ref else ""
        pushed = self._pushed()
        if pushed and now in ("", self.placeholder_digest):
            return self._put_back_pushed(pushed, problem)
        if now == "":
            # The tag is gone as asked (a step was applied though its answer was an error).
            cleanup = self._cleanup()
            return Untagged(
                Result.DONE,
                f"({problem}; the registry no longer has the tag all the same; {cleanup}.)",
                code=code,
                details={"recovered": trouble.problem},
            )
        if now == self.placeholder_digest:
            put_back = self._put_back(self.original, self.digest)
            cleanup = self._cleanup() if put_back else self._left_on_tag()
            where = (
                f"{self.tag} was put back on {short_digest(self.digest)}"
                if put_back
                else f"{self.tag} could not be put back on {short_digest(self.digest)}"
            )
            return Untagged(
                Result.FAILED,
                f"{problem}. Nothing was deleted: {where}; {cleanup}.",
                now=self.digest if put_back else now,
                stop=not put_back,
                code=code,
                details={"placeholder": self.placeholder_digest, "rolled_back": put_back},
            )
        cleanup = self._cleanup()
        if now == self.digest:
            return Untagged(
                Result.FAILED,
                f"{problem}. Nothing was deleted: {self.tag} still points at "
                f"{short_digest(self.digest)}; {cleanup}.",
                now=now,
                code=code,
                details={"placeholder": self.placeholder_digest},
            )
        result = self._changed(now, during=True)
        result.message = f"{problem}. {result.message} ({cleanup[:1].upper()}{cleanup[1:]}.)"
        return result

    def _left_on_tag(self) -> str:
        return (
            f"it serves the placeholder {self.placeholder_digest} for now: push "
            f"{short_digest(self.digest)} to {self.tag} again, or delete the tag again"
        )

    def _put_back_pushed(self, pushed: str, problem: str) -> Untagged:
        """A push the placeholder overwrote: put that image back on the tag."""
        try:
            body = original_bytes(self.client, self.name, pushed)
            put_back = self._put_back(body, pushed)
        except RegistryError:
            put_back = False
        cleanup = self._cleanup()
        lead = f"{problem}. " if problem else ""
        if put_back:
            return Untagged(
                Result.CHANGED,
                f"{lead}{self.tag} was pushed again ({short_digest(pushed)}) while it was being "
                f"deleted, so it was not deleted: the pushed image was put back on it; {cleanup}.",
                now=pushed,
                details={"pushed": pushed, "put_back": True},
            )
        return Untagged(
            Result.FAILED,
            f"{lead}{self.tag} was pushed again ({short_digest(pushed)}) while it was being "
            f"deleted, and the placeholder took the tag from it; putting it back failed. Use "
            f"“Put it back” below, or push it again; {cleanup}.",
            restore={"tag": self.tag, "digest": pushed},
            details={"pushed": pushed, "put_back": False},
        )

    def _put_back(self, original: tuple[bytes, str], digest: str) -> bool:
        body, media_type = original
        if not body or sha256_digest(body) != digest:
            return False
        try:
            self.client.put_manifest(self.name, self.tag, body, media_type)
            ref = self._head(self.tag)
        except (RegistryError, _Trouble):
            return False
        return ref is not None and ref.digest == digest

    def _cleanup(self) -> str:
        """Delete the placeholder, which nothing points at any more (its digest is unique)."""
        if self.throwaway is None:
            return "nothing else changed"
        if self._placeholder_gone():
            return "nothing else changed"
        try:
            self.client.delete_manifest(self.name, self.placeholder_digest)
        except RegistryError as exc:
            if not exc.missing and not self._placeholder_gone():
                return (
                    f"the untagged placeholder {self.placeholder_digest} is left in "
                    f"{self.name} (garbage-collect removes it)"
                )
        return "the placeholder was removed"

    def _placeholder_gone(self) -> bool:
        try:
            self.client.head_manifest(self.name, self.placeholder_digest)
        except RegistryError as exc:
            return exc.missing
        return False

    # -- reading ------------------------------------------------------------------------------

    def _head(self, reference: str, *, trouble: str = "") -> ManifestRef | None:
        try:
            return self.client.head_manifest(self.name, reference)
        except RegistryError as exc:
            if exc.missing:
                return None
            raise _Trouble(
                f"the registry failed while {trouble or 'reading the tag back'} ({describe(exc)})",
                exc,
            ) from exc

    def _pushed(self) -> str:
        """The newest digest pushed to the tag since the last look, other than ours."""
        ignore = {self.digest}
        if self.throwaway is not None:
            ignore.add(self.throwaway.digest)
        for digest in self.pushes_since(self.name, self.tag, self.started):
            if digest not in ignore:
                return digest
        return ""

    def _changed(self, now: str, *, during: bool = False) -> Untagged:
        when = "while it was being deleted" if during else "after you confirmed"
        return Untagged(
            Result.CHANGED,
            f"{self.tag} now points at {short_digest(now)}, not {short_digest(self.digest)}: it "
            f"was pushed again {when}, so it was left alone.",
            now=now,
        )
