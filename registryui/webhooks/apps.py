from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "registryui.webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Audited actions (deletes, retags, retention runs) become webhook deliveries.
        from . import signals  # noqa: F401
