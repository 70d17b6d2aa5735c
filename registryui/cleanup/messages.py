"""What a failed registry call means for the person who asked for the action, in words."""

from __future__ import annotations

from registryui.registry import RegistryError

DELETES_DISABLED = (
    "This registry does not allow deletes; set `storage.delete.enabled: true` "
    "in its configuration and restart it."
)
ALREADY_GONE = "already gone"


def describe(exc: RegistryError, *, nothing_changed: bool = False) -> str:
    """A sentence for the page and the audit log; the raw code stays in the details."""
    if exc.code == "UNSUPPORTED" or exc.status == 405:
        return DELETES_DISABLED
    if exc.code in ("UNAUTHORIZED", "DENIED"):
        text = (
            "The registry refused the credentials Registry UI uses "
            "(REGISTRY_USERNAME / REGISTRY_PASSWORD, or its token server)."
        )
    elif exc.transient:
        text = f"{exc.message} Try again when it answers."
    else:
        text = exc.message
    if nothing_changed:
        text += " Nothing was changed."
    return text
