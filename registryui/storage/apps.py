from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "registryui.storage"
    verbose_name = "Storage"
