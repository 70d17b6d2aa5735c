"""Fixtures of the cleanup tests: a real registry 2.8 per test (cleanup changes it), images
pushed with skopeo, synced with the real ``Syncer``, and the personas of ``tests/personas.py``:

    a_deleter   delete on team-a/*      (may delete, retag and run retention there)
    a_viewer    view on team-a/*        (403 on every cleanup action)
    b_admin     admin on team-b/*       (team-a/* is hidden: 404)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registryui.devtools.images import Layout
from tests.personas import personas  # noqa: F401

from .support import World


@pytest.fixture
def world(settings, registry_factory, tmp_path: Path) -> World:
    process = registry_factory()
    settings.REGISTRY_URL = process.url
    settings.REGISTRY_PUBLIC_HOST = "registry.example.com"
    settings.REGISTRY_RETRIES = 0
    settings.SYNC_CONCURRENCY = 4
    return World(registry=process, layout=Layout(tmp_path / "layout"))
