from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from registryui.devtools.images import Layout
from registryui.devtools.registry import RegistryProcess
from tests.support import samples, samples_registry  # noqa: F401 (session-wide fixtures)

# CI must not pass or fail by the luck of the draw: the default profile replays the same
# examples on every run. HYPOTHESIS_PROFILE=explore draws new ones (and remembers failures).
hypothesis_settings.register_profile("default", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

PLAIN_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@pytest.fixture(autouse=True, scope="session")
def _plain_static_storage(tmp_path_factory):
    """Tests render templates without running collectstatic first; STATIC_ROOT exists (empty)
    so that WhiteNoise does not warn about a missing var/staticfiles on a clean checkout."""
    from django.test import override_settings

    static_root = tmp_path_factory.mktemp("static-root")
    with override_settings(STORAGES=PLAIN_STORAGES, STATIC_ROOT=static_root):
        yield


@pytest.fixture
def registry_factory(tmp_path: Path):
    """Start real registries with options; all are stopped at the end of the test."""
    started: list[RegistryProcess] = []

    def start(**options) -> RegistryProcess:
        root = tmp_path / f"registry{len(started)}"
        process = RegistryProcess(root, **options).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def registry(registry_factory) -> RegistryProcess:
    return registry_factory()


@pytest.fixture
def use_registry(settings, registry: RegistryProcess) -> RegistryProcess:
    """Point the app at the test's registry."""
    settings.REGISTRY_URL = registry.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 1
    return registry


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "layout")
