"""The one rate limit on password checks: the web and admin login forms, LDAP passwords and
every Basic login at /auth/token, per user name and client address.

Each check is counted *before* the password is looked at, with one UPDATE that both counts and
decides (``reserve``), so that forty parallel guesses cannot all pass a check that none of
them has been counted in yet (django-axes checks first and counts afterwards, which is the race
this replaces: jazzband/django-axes#592, "known issue, won't fix"). A successful check deletes
the counter (``Attempt.succeeded``); a failed one leaves it counted.

The counters live in the database, so every gunicorn worker and every host sharing the
database sees the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, PositiveIntegerField, Value, When
from django.utils import timezone

from registryui.core.audit import client_ip

from .models import LoginCounter


class Locked(Exception):
    """Too many password checks for this name from this address: refused unchecked."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed logins; try again in {retry_after} seconds.")


def _key(request, username: str) -> tuple[str, str]:
    # Case-folded because LDAP (and people) ignore case: "Alice" must not get ten more tries.
    name = username.replace("\x00", "").casefold()[:150]
    return name, (client_ip(request) or "")[:64]


@dataclass
class Attempt:
    username: str
    client_ip: str

    def succeeded(self) -> None:
        """The password was right: forget this name and address's earlier failures."""
        LoginCounter.objects.filter(username=self.username, client_ip=self.client_ip).delete()


def reserve(request, username: str) -> Attempt:
    """Count one password check for ``username`` from the request's address, or raise
    ``Locked`` when the limit is reached (the password must then not be checked at all)."""
    limit = settings.LOGIN_FAILURE_LIMIT
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    name, address = _key(request, username)
    now = timezone.now()
    stale = now - window
    counters = LoginCounter.objects.filter(username=name, client_ip=address)
    # A streak whose last check left the window starts again at 1. Once over the limit the
    # count stops at limit + 1 and the time stays, so refused attempts do not extend the lock.
    count = Case(
        When(last_at__lte=stale, then=Value(1)),
        When(attempts__gt=limit, then=F("attempts")),
        default=F("attempts") + 1,
        output_field=PositiveIntegerField(),
    )
    moved = Case(
        When(last_at__gt=stale, attempts__gt=limit, then=F("last_at")),
        default=Value(now),
        output_field=DateTimeField(),
    )
    for _ in range(3):
        # The UPDATE takes the row's lock (PostgreSQL) or the database's write lock (SQLite)
        # until the end of the transaction, so the read below sees this request's own count.
        with transaction.atomic():
            if counters.update(attempts=count, last_at=moved):
                counter = counters.get()
                break
            try:
                with transaction.atomic():
                    counter = LoginCounter.objects.create(
                        username=name, client_ip=address, attempts=1, last_at=now
                    )
                # New streaks are rare next to repeated ones: a good moment to drop old rows.
                forget_stale()
                break
            except IntegrityError:
                continue  # another request created the row meanwhile: count in it
    else:  # pragma: no cover - three collisions in a row on one new row
        raise Locked(1)
    if counter.attempts > limit:
        wait = (counter.last_at + window - now).total_seconds()
        raise Locked(max(1, math.ceil(wait)))
    return Attempt(name, address)


def forget_stale() -> int:
    """Delete counters whose window has passed (they count for nothing)."""
    stale = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)
    deleted, _ = LoginCounter.objects.filter(last_at__lte=stale).delete()
    return deleted
