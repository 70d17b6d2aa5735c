from django.apps import AppConfig


class CleanupConfig(AppConfig):
    name = "registryui.cleanup"
