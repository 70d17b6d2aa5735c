from django.apps import AppConfig


class OverviewConfig(AppConfig):
    name = "registryui.overview"
    verbose_name = "repository overviews"
