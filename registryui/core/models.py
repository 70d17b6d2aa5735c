"""The audit log: every mutation, retention run and privileged token, read-only in the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    class Result(models.TextChoices):
        OK = "ok", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: Who acted, kept even if the user is deleted: "alice", "policy:nightly", "robot:ci".
    actor_name = models.CharField(max_length=150, blank=True)
    #: Where the action came from: "ui", "policy", "command", "token", "events".
    via = models.CharField(max_length=16, default="ui")
    #: What was done: "delete_tag", "delete_image", "retag", "move_tag", "retention_run",
    #: "token_issued", "login_failed", "sync_now", ...
    action = models.CharField(max_length=32, db_index=True)
    repository = models.CharField(max_length=255, blank=True, db_index=True)
    reference = models.CharField(max_length=255, blank=True, help_text="The tag or digest.")
    digest = models.CharField(max_length=135, blank=True)
    #: What else the action touched (other tags, child manifests, bytes freed, scopes, ...).
    details = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices, default=Result.OK)
    message = models.TextField(blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        target = self.repository + (f":{self.reference}" if self.reference else "")
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {target}"
