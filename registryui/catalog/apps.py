from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "registryui.catalog"
    verbose_name = "Catalog"
