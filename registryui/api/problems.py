"""Errors of the REST API as problem documents (RFC 9457), one shape for every failure.

``{"type", "title", "status", "detail", "code"}`` with the content type
``application/problem+json``; a 400 about input also names the fields (``errors``: each with
``field`` such as ``query.sort`` or ``body.tags.0`` and a ``message``). ``code`` is stable:
scripts branch on it, never on the wording of ``detail``.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"


class Code(models.TextChoices):
    """Every ``code`` the API answers with; the label is the problem's ``title``."""

    BAD_REQUEST = "bad_request", "Bad request"
    INVALID_FIELD = "invalid_field", "Invalid input"
    INVALID_CURSOR = "invalid_cursor", "Invalid cursor"
    NOT_AUTHENTICATED = "not_authenticated", "Authentication required"
    INVALID_TOKEN = "invalid_token", "Invalid token"
    TOO_MANY_ATTEMPTS = "too_many_attempts", "Too many failed attempts"
    CSRF_FAILED = "csrf_failed", "CSRF check failed"
    FORBIDDEN = "forbidden", "Not allowed"
    NOT_FOUND = "not_found", "Not found"
    METHOD_NOT_ALLOWED = "method_not_allowed", "Method not allowed"
    CONFIRMATION_NEEDED = "confirmation_needed", "Confirmation needed"
    DIGEST_REQUIRED = "digest_required", "Digest required"
    CHANGED = "changed", "Changed meanwhile"
    PLATFORM_IMAGE = "platform_image", "Platform image of a tagged index"
    NOTHING_TO_RESTORE = "nothing_to_restore", "Nothing to put back"
    POLICY_DISABLED = "policy_disabled", "Policy switched off"
    PREVIEW_CHANGED = "preview_changed", "Preview changed"
    DELETES_DISABLED = "deletes_disabled", "Deletes disabled in the registry"
    REGISTRY_FAILED = "registry_failed", "Registry failed"
    SERVER_ERROR = "server_error", "Server error"

    @property
    def type_uri(self) -> str:
        # A URN: stable, and it promises no page at an address that could move.
        return f"urn:registryui:problem:{self.value}"


class Problem(Exception):
    """Raised anywhere under the API; the exception handler answers it as a document."""

    def __init__(
        self,
        status: int,
        code: Code,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.code.type_uri,
            "title": self.code.label,
            "status": self.status,
            "detail": self.detail,
            "code": self.code.value,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> HttpResponse:
        response = HttpResponse(
            json.dumps(self.document(), default=str),
            status=self.status,
            content_type=CONTENT_TYPE,
        )
        for name, value in self.headers.items():
            response[name] = value
        return response


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """pydantic/ninja errors (``loc``, ``msg``) → ``[{"field": "query.sort", "message"}]``."""
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("", None)]
        # ninja nests a schema's fields under its parameter's name (``query.filters.sort``);
        # the client only knows the field.
        if len(loc) > 2 and loc[0] in ("query", "path") and loc[1] in _PARAMETER_GROUPS:
            loc = [loc[0], *loc[2:]]
        if len(loc) > 1 and loc[0] == "body" and loc[1] == "payload":
            loc = [loc[0], *loc[2:]]
        out.append({"field": ".".join(loc) or "body", "message": str(error.get("msg", ""))})
    return out


#: What a deletion needs to say it is about what the caller saw: ``digest``, the digest the
#: caller read the tag at. Without it the delete would take whatever the tag points at by
#: then, which a push may have changed: nobody chose that image.
DIGEST_NEEDED = (
    "Send the digest you saw the tag at (?digest=sha256:…, from GET /manifests/NAME:TAG or "
    "the tag list): it is deleted only while the registry still has it at that digest."
)


def missing_confirmation(errors: list[dict[str, Any]]) -> Problem | None:
    """A missing ``digest`` (pydantic/ninja errors) as its own problem, ``digest_required``,
    not a bare "Field required": a script written when it was optional learns what to send."""
    for raw, error in zip(errors, field_errors(errors), strict=True):
        if error["field"] == "query.digest" and raw.get("type") == "missing":
            return Problem(
                400,
                Code.DIGEST_REQUIRED,
                DIGEST_NEEDED,
                errors=[{"field": "query.digest", "message": DIGEST_NEEDED}],
            )
    return None


#: Names of the grouped parameters of the API's operations (a Schema of query parameters).
_PARAMETER_GROUPS = frozenset({"filters", "page"})
