from __future__ import annotations

from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "registryui.tokens"
    verbose_name = "Registry tokens"

    def ready(self) -> None:
        from registryui.catalog.upstream import set_token_provider_factory

        from . import checks  # noqa: F401  (registers the system checks)
        from .issuing import app_token_provider_factory

        # In token mode the app's registry client signs its own tokens with our key.
        set_token_provider_factory(app_token_provider_factory)
