"""The REGISTRY_URL system check."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def registry_errors() -> list[str]:
    return [m.id for m in run_checks() if m.id and m.id.startswith("registryui.E00")]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000",
        "https://registry.example.com",
        "https://registry.example.com/",
        "http://[::1]:5000",
        "http://registry:5000",
    ],
)
def test_good_registry_urls_pass(settings, url):
    settings.REGISTRY_URL = url
    assert registry_errors() == []


@pytest.mark.parametrize(
    "url",
    [
        "",
        "127.0.0.1:5000",  # no scheme: urlsplit reads "127.0.0.1" as the scheme
        "registry.example.com",
        "ftp://registry.example.com",
        "http://",
        "http://:5000",
        "http://registry.example.com:99999",
        "http://registry.example.com:port",
        "http://[::1:5000",  # an unclosed IPv6 bracket: urlsplit itself raises
    ],
)
def test_a_url_without_scheme_host_or_valid_port_is_refused(settings, url):
    settings.REGISTRY_URL = url
    assert registry_errors() == ["registryui.E001"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/v2/",
        "https://example.com/registry",
        "http://h:5000/?x=1",
        "http://h#f",
    ],
)
def test_a_url_with_a_path_is_refused(settings, url):
    settings.REGISTRY_URL = url
    assert registry_errors() == ["registryui.E002"]


def test_the_check_stops_manage_py(settings):
    settings.REGISTRY_URL = "127.0.0.1:5000"
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    message = str(caught.value)
    assert "registryui.E001" in message
    assert "REGISTRY_URL='127.0.0.1:5000' needs a scheme" in message
    assert "e.g. http://127.0.0.1:5000" in message


def test_an_unreadable_url_is_the_checks_message_not_a_traceback_at_start_up(tmp_path):
    """Settings derive REGISTRY_PUBLIC_HOST from REGISTRY_URL at import: a URL urlsplit cannot
    read must still let manage.py start far enough to print the check's message."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    base = Path(__file__).resolve().parents[2]
    env = {**os.environ, "REGISTRY_URL": "http://[::1:5000", "DEBUG": "true"}
    env.pop("REGISTRY_PUBLIC_HOST", None)
    done = subprocess.run(
        [sys.executable, str(base / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=base,
    )
    assert done.returncode == 1
    assert "registryui.E001" in done.stderr
    assert "Traceback" not in done.stderr
