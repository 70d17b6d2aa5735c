from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "registryui.catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # The storage links' signal receivers (a removed repository's blobs are recounted).
        from . import storage  # noqa: F401
