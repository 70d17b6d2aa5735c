from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "registryui.events"
