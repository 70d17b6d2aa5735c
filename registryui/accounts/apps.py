from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "registryui.accounts"
    label = "accounts"
    verbose_name = "Accounts and sign-in"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
