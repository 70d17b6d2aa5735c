from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "registryui.ops"
