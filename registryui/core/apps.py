from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "registryui.core"
    verbose_name = "Registry UI"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
