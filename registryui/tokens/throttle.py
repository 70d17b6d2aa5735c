"""The rate limit on failed logins at /auth/token, per client address.

A sliding window over rows in the database, so that every gunicorn worker (and every host
behind a load balancer sharing the database) counts the same failures.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import FailedLogin


def retry_after(client_ip: str) -> int:
    """Seconds until ``client_ip`` may try again; 0 when it is under the limit."""
    limit = settings.TOKEN_LOGIN_FAILURE_LIMIT
    window = timedelta(seconds=settings.TOKEN_LOGIN_FAILURE_WINDOW)
    now = timezone.now()
    recent = list(
        FailedLogin.objects.filter(client_ip=client_ip, created_at__gt=now - window)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return 0
    # Allowed again once the oldest of the last ``limit`` failures leaves the window.
    return max(1, math.ceil((recent[-1] + window - now).total_seconds()))


def record_failure(client_ip: str, username: str) -> None:
    now = timezone.now()
    FailedLogin.objects.create(client_ip=client_ip, username=username[:150], created_at=now)
    # Failures older than the window count for nothing: drop them (an indexed range delete).
    FailedLogin.objects.filter(
        created_at__lte=now - timedelta(seconds=settings.TOKEN_LOGIN_FAILURE_WINDOW)
    ).delete()
