"""Sending deliveries: signed POSTs, one endpoint's events in order, retries with backoff.

``Dispatcher`` runs beside the sync worker (``sync_registry --loop`` starts it in a thread) or
alone (``deliver_webhooks``). Every poll it takes the oldest pending delivery of each endpoint
that has nothing in flight, leases it in the database, and sends it from a thread of its own:
a receiver that hangs holds its own queue for at most ``WEBHOOK_TIMEOUT`` seconds per attempt,
never another endpoint's, never the registry's notifications (those only write rows).

Nothing is lost on a restart: a delivery is a row until a receiver answered 2xx; a worker that
dies mid-send leaves a lease that runs out, and the next worker sends it again (receivers see
the same CloudEvents ``id`` and can drop the repeat).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Min
from django.utils import timezone

from .models import LOG_RETENTION, Delivery, Endpoint

log = logging.getLogger(__name__)

USER_AGENT = "registryui-webhooks/1"
#: Attempts are capped by ``WEBHOOK_MAX_ATTEMPTS`` (16 by default: with the backoff below,
#: about six hours of trying); the first retry waits ``WEBHOOK_BACKOFF_BASE`` seconds.
BACKOFF_MAX = 3600.0
#: Kept of a receiver's answer, for the delivery log.
RESPONSE_KEPT = 2000
POLL_SECONDS = 1.0


def backoff(attempts: int, *, base: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: exponential with jitter, capped."""
    base = settings.WEBHOOK_BACKOFF_BASE if base is None else base
    delay = min(BACKOFF_MAX, base * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.8, 1.2)  # jitter, not a secret


# -- the request ----------------------------------------------------------------------------


def slack_message(event: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` with mrkdwn), also read by Mattermost,
    Rocket.Chat and Teams' Slack-compatible connectors."""
    data = event.get("data") or {}
    host = data.get("registry") or ""
    repository = data.get("repository", "")
    where = f"{host}/{repository}" if host else repository
    actor = f" by {data['actor']}" if data.get("actor") else ""
    tag, digest = data.get("tag", ""), data.get("digest", "")
    kind = event.get("type", "")
    if kind == "io.registryui.retention.run":
        tags = ", ".join(data.get("deleted_tags", [])[:20])
        text = f":broom: Retention policy *{data.get('policy', '')}* deleted from `{where}`: {tags}"
    elif kind == "io.registryui.image.deleted":
        text = f":wastebasket: Image `{where}@{digest}` deleted{actor}"
    elif kind == "io.registryui.repository.deleted":
        text = f":wastebasket: Repository `{where}` deleted{actor}"
    elif kind == "io.registryui.tag.deleted":
        text = f":wastebasket: Tag `{where}:{tag}` deleted{actor}"
    elif kind == "io.registryui.tag.moved":
        text = f":arrow_right: Tag `{where}:{tag}` moved to `{digest}`{actor}"
    else:
        text = f":package: `{where}:{tag}` pushed (`{digest}`){actor}"
    return {"text": text}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` with the endpoint's secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_request(endpoint: Endpoint, delivery: Delivery) -> tuple[bytes, dict[str, str]]:
    if endpoint.format == Endpoint.Format.SLACK:
        body = json.dumps(slack_message(delivery.payload)).encode()
        content_type = "application/json"
    else:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        content_type = "application/cloudevents+json; charset=utf-8"
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-RegistryUI-Event": delivery.event_type,
        "X-RegistryUI-Delivery": str(delivery.pk),
        "X-RegistryUI-Timestamp": timestamp,
        "X-RegistryUI-Signature": signature(endpoint.secret, timestamp, body),
    }
    return body, headers


class Refused(Exception):
    """The endpoint's address is one webhooks may not reach (``WEBHOOK_BLOCKED_NETWORKS``)."""


def check_destination(url: str) -> None:
    """Refuse addresses in ``WEBHOOK_BLOCKED_NETWORKS`` (by default loopback, link-local and
    the cloud metadata address): a team admin's URL must not reach this host's own services."""
    networks = [ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_BLOCKED_NETWORKS]
    if not networks:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise Refused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in networks):
            raise Refused(f"{host} resolves to {address}, a blocked network")


@dataclass
class Attempt:
    status: int | None = None
    response: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def send(endpoint: Endpoint, delivery: Delivery, session: requests.Session) -> Attempt:
    try:
        check_destination(endpoint.url)
        body, headers = build_request(endpoint, delivery)
        response = session.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=(3.05, settings.WEBHOOK_TIMEOUT),
            allow_redirects=False,
        )
    except Refused as exc:
        return Attempt(error=str(exc))
    except requests.RequestException as exc:
        return Attempt(error=f"{type(exc).__name__}: {exc}"[:500])
    text = response.text[:RESPONSE_KEPT] if response.content else ""
    return Attempt(status=response.status_code, response=text)


def record(delivery_id: int, attempt: Attempt) -> None:
    """Write an attempt's outcome, and release the lease."""
    now = timezone.now()
    delivery = Delivery.objects.only("attempts").get(pk=delivery_id)
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status": attempt.status,
        "last_response": attempt.response,
        "last_error": attempt.error[:500],
        "leased_until": None,
    }
    if attempt.ok:
        fields.update(state=Delivery.State.DELIVERED, delivered_at=now)
    elif attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(state=Delivery.State.FAILED)
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=backoff(attempts)))
    Delivery.objects.filter(pk=delivery_id).update(**fields)


# -- the dispatcher --------------------------------------------------------------------------


class Dispatcher:
    """Sends due deliveries, each endpoint from its own thread, until ``stop_event`` is set."""

    def __init__(self, *, stop_event: threading.Event | None = None, poll: float = POLL_SECONDS):
        self.stop_event = stop_event or threading.Event()
        self.poll = poll
        # Longer than one attempt may take (connect + WEBHOOK_TIMEOUT), with room to record it.
        self.lease = timedelta(seconds=3.05 + settings.WEBHOOK_TIMEOUT + 5)
        self._busy: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._last_prune: float | None = None

    def heads(self) -> list[tuple[int, int]]:
        """``(endpoint, delivery)``: the oldest pending delivery of each endpoint, its queue's
        head (deliveries to one endpoint go out in order)."""
        return list(
            Delivery.objects.filter(state=Delivery.State.PENDING, endpoint__active=True)
            .values("endpoint_id")
            .annotate(head=Min("id"))
            .values_list("endpoint_id", "head")
        )

    def claim(self, delivery_id: int) -> Delivery | None:
        """Lease a due head; None when it is not due, or another worker holds it."""
        now = timezone.now()
        claimed = (
            Delivery.objects.filter(
                pk=delivery_id, state=Delivery.State.PENDING, next_attempt_at__lte=now
            )
            .exclude(leased_until__gt=now)
            .update(leased_until=now + self.lease)
        )
        if not claimed:
            return None
        return Delivery.objects.select_related("endpoint").get(pk=delivery_id)

    def step(self, *, inline: bool = False) -> int:
        """Start a sender for every endpoint whose head is due; returns how many started.

        ``inline`` sends in the calling thread, one after another (``deliver_webhooks --once``).
        """
        started = 0
        with self._lock:
            self._busy = {pk: t for pk, t in self._busy.items() if t.is_alive()}
            busy = set(self._busy)
        for endpoint_id, delivery_id in self.heads():
            if endpoint_id in busy:
                continue
            delivery = self.claim(delivery_id)
            if delivery is None:
                continue
            started += 1
            if inline:
                self._send_one(delivery, close=False)
                continue
            thread = threading.Thread(
                target=self._send_one,
                args=(delivery,),
                name=f"webhook-{endpoint_id}",
                daemon=True,
            )
            with self._lock:
                self._busy[endpoint_id] = thread
            thread.start()
        self.prune()
        return started

    def _send_one(self, delivery: Delivery, *, close: bool = True) -> None:
        try:
            with requests.Session() as session:
                attempt = send(delivery.endpoint, delivery, session)
            record(delivery.pk, attempt)
            if not attempt.ok:
                log.info(
                    "webhook delivery %s to %s failed (attempt %s): %s",
                    delivery.pk,
                    delivery.endpoint.name,
                    delivery.attempts + 1,
                    attempt.error or attempt.status,
                )
        except DatabaseError:
            log.exception("could not record webhook delivery %s", delivery.pk)
        finally:
            if close:  # a sender thread's own connection
                connections.close_all()

    def prune(self) -> None:
        """Forget delivered and failed rows older than ``LOG_RETENTION`` (hourly)."""
        if self._last_prune is not None and time.monotonic() - self._last_prune < 3600:
            return
        self._last_prune = time.monotonic()
        Delivery.objects.filter(
            state__in=[Delivery.State.DELIVERED, Delivery.State.FAILED],
            created_at__lt=timezone.now() - LOG_RETENTION,
        ).delete()

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                close_old_connections()
                self.step()
            except DatabaseError as exc:
                log.warning("webhook dispatcher: database error, retrying: %s", exc)
                connections.close_all()
            self.stop_event.wait(self.poll)
        self.join(timeout=settings.WEBHOOK_TIMEOUT + 5)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._busy.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="webhook-dispatcher", daemon=True)
        thread.start()
        return thread
