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

    class Action(models.TextChoices):
        """Every kind of entry the product writes, grouped by where it comes from."""

        # Cleanup: deletions, retags and retention runs (cleanup/).
        DELETE_TAG = "delete_tag", "Delete tag"
        DELETE_IMAGE = "delete_image", "Delete image"
        BULK_DELETE = "bulk_delete", "Bulk delete"
        RESTORE_TAG = "restore_tag", "Restore tag"
        RETAG = "retag", "Add tag"
        MOVE_TAG = "move_tag", "Move tag"
        COPY_IMAGE = "copy_image", "Copy to repository"
        RETENTION_RUN = "retention_run", "Retention run"
        RETENTION_ENABLED = "retention_enabled", "Retention policy switched on"
        RETENTION_DISABLED = "retention_disabled", "Retention policy switched off"
        # Repository overviews and stars (overview/).
        OVERVIEW_CHANGED = "overview_changed", "Overview changed"
        STARRED = "starred", "Repository starred"
        UNSTARRED = "unstarred", "Repository unstarred"
        # Operations.
        SYNC_NOW = "sync_now", "Sync now"
        # Sign-in and the token server (accounts/, tokens/).
        LOGIN = "login", "Sign-in"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        TOKEN_ISSUED = "token_issued", "Token issued"
        PAT_CREATED = "pat_created", "Personal token created"
        PAT_REVOKED = "pat_revoked", "Personal token revoked"
        ROBOT_CREATED = "robot_created", "Robot account created"
        ROBOT_REVOKED = "robot_revoked", "Robot account revoked"
        GROUP_MAPPING_SAVED = "group_mapping_saved", "Group mapping saved"
        GROUP_MAPPING_DELETED = "group_mapping_deleted", "Group mapping deleted"
        # Teams and site settings (teams/ admin, and group sync at sign-in).
        TEAM_CREATED = "team_created", "Team created"
        TEAM_CHANGED = "team_changed", "Team changed"
        TEAM_DELETED = "team_deleted", "Team deleted"
        TEAM_MEMBER_ADDED = "team_member_added", "Team member added"
        TEAM_MEMBER_REMOVED = "team_member_removed", "Team member removed"
        GRANT_ADDED = "grant_added", "Grant added"
        GRANT_CHANGED = "grant_changed", "Grant changed"
        GRANT_REMOVED = "grant_removed", "Grant removed"
        SITE_SETTINGS_CHANGED = "site_settings_changed", "Site settings changed"
        # Outgoing webhooks (webhooks/ admin).
        WEBHOOK_SAVED = "webhook_saved", "Webhook saved"
        WEBHOOK_DELETED = "webhook_deleted", "Webhook deleted"
        WEBHOOK_REDELIVER = "webhook_redeliver", "Webhook delivery sent again"

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
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
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
