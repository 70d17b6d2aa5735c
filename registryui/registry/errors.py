from __future__ import annotations

# Short human messages for the registry's error codes (docs/spec/api.md, "Errors").
_MESSAGES = {
    "BLOB_UNKNOWN": "The blob is not in the registry.",
    "BLOB_UPLOAD_INVALID": "The blob upload was rejected.",
    "BLOB_UPLOAD_UNKNOWN": "The blob upload is unknown to the registry.",
    "DIGEST_INVALID": "The registry rejected the digest.",
    "MANIFEST_BLOB_UNKNOWN": "The manifest refers to a blob the repository does not have.",
    "MANIFEST_INVALID": "The registry rejected the manifest as invalid.",
    "MANIFEST_UNKNOWN": "The manifest is not in the registry.",
    "MANIFEST_UNVERIFIED": "The registry could not verify the manifest.",
    "NAME_INVALID": "The repository name is invalid.",
    "NAME_UNKNOWN": "The repository is not in the registry.",
    "PAGINATION_NUMBER_INVALID": "The registry rejected the page size.",
    "RANGE_INVALID": "The registry rejected the byte range.",
    "SIZE_INVALID": "The registry rejected the content length.",
    "TAG_INVALID": "The registry rejected the tag.",
    "UNAUTHORIZED": "The registry refused our credentials.",
    "DENIED": "The registry denied access to this resource.",
    "UNSUPPORTED": "The registry does not support this operation.",
    "TOOMANYREQUESTS": "The registry is rate-limiting us; try again shortly.",
    "UNREACHABLE": "The registry cannot be reached.",
    "TIMEOUT": "The registry did not answer in time.",
    "UNAVAILABLE": "The registry is unavailable.",
    "INVALID_RESPONSE": "The registry sent an answer we could not read.",
}

NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"})
#: Codes that describe the network or the registry's health, not the object asked for.
TRANSIENT_CODES = frozenset({"UNREACHABLE", "TIMEOUT", "UNAVAILABLE", "TOOMANYREQUESTS"})


class RegistryError(Exception):
    """Every failure of the registry client: a short human message plus the registry's code.

    ``code`` is the registry's own error code (``NAME_UNKNOWN``, ``UNSUPPORTED``, ...) when it
    sent one, or one of ours for transport problems (``UNREACHABLE``, ``TIMEOUT``,
    ``UNAVAILABLE``, ``INVALID_RESPONSE``). ``status`` is the HTTP status when there was one.
    """

    def __init__(
        self, message: str, *, code: str = "", status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.detail = detail

    @classmethod
    def from_code(cls, code: str, *, status: int | None = None, detail: str = "") -> RegistryError:
        return cls(
            _MESSAGES.get(code, f"The registry answered {code}."),
            code=code,
            status=status,
            detail=detail,
        )

    @property
    def not_found(self) -> bool:
        return self.code in NOT_FOUND_CODES

    @property
    def missing(self) -> bool:
        """The object asked for is not there: a not-found code, or a 404 without one (a proxy's,
        or a registry that sends no error body)."""
        return self.not_found or self.status == 404

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or (self.status or 0) >= 500

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"[{self.code}]")
        if self.detail:
            parts.append(f"({self.detail})")
        return " ".join(parts)

    def __reduce__(self):  # keep the keyword arguments when pickled across processes
        return (_rebuild, (self.message, self.code, self.status, self.detail))


def _rebuild(message: str, code: str, status: int | None, detail: str) -> RegistryError:
    return RegistryError(message, code=code, status=status, detail=detail)
