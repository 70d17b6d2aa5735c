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
