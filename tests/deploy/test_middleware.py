"""registryui.core.middleware: who may say "this was HTTPS" and "the client is X", and the
headers every response gets."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory, override_settings

from registryui.core.middleware import (
    SecurityHeadersMiddleware,
    TrustedProxies,
    TrustedProxyMiddleware,
    build_policy,
    client_from_forwarded_for,
    parse_address,
)

factory = RequestFactory()


def seen_by_view(request):
    response = HttpResponse("ok")
    response.remote_addr = request.META["REMOTE_ADDR"]
    response.secure = request.is_secure()
    response.forwarded = {k: v for k, v in request.META.items() if "FORWARDED" in k}
    return response


def through_proxy_middleware(request, *, trusted: str, behind_https_proxy: bool = True):
    options = {"FORWARDED_ALLOW_IPS": trusted.split(",")}
    if behind_https_proxy:
        options.update(
            SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
            SECURE_SSL_REDIRECT=True,
        )
    with override_settings(**options):
        chain = TrustedProxyMiddleware(SecurityMiddleware(seen_by_view))
        return chain(request)


def test_a_trusted_proxy_tells_the_scheme_and_the_client():
    request = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.9",
    )  # fmt: skip
    response = through_proxy_middleware(request, trusted="10.0.0.0/24")
    assert response.status_code == 200
    assert response.secure is True
    assert response.remote_addr == "203.0.113.7"


def test_anyone_else_cannot_claim_https_or_an_address():
    request = factory.get(
        "/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_FOR="10.0.0.1", HTTP_FORWARDED="for=10.0.0.1;proto=https",
        HTTP_X_REAL_IP="10.0.0.1",
    )  # fmt: skip
    response = through_proxy_middleware(request, trusted="10.0.0.0/24")
    assert response.status_code == 301  # the spoofed header was dropped: plain HTTP
    assert response["Location"] == "https://testserver/"
    assert request.META["REMOTE_ADDR"] == "198.51.100.4"
    assert not [k for k in request.META if "FORWARDED" in k or "REAL_IP" in k]


def test_the_client_is_the_first_untrusted_hop_from_the_right():
    trusted = TrustedProxies(["10.0.0.0/8", "::1"])
    # The client wrote "1.1.1.1" itself; our proxies appended 203.0.113.7 and 10.1.1.1.
    chain = "1.1.1.1, 203.0.113.7, 10.1.1.1"
    assert client_from_forwarded_for(chain, trusted) == ipaddress.ip_address("203.0.113.7")
    # Every hop is ours: the leftmost is the client.
    assert client_from_forwarded_for("10.2.2.2, 10.1.1.1", trusted) == ipaddress.ip_address(
        "10.2.2.2"
    )
    # An unreadable hop: we cannot tell, so nothing changes.
    assert client_from_forwarded_for("1.1.1.1, junk, 10.1.1.1", trusted) is None
    assert client_from_forwarded_for("", trusted) is None


def test_trusting_everyone_takes_the_last_hop_only():
    trusted = TrustedProxies(["*"])
    assert ipaddress.ip_address("192.0.2.1") in trusted
    # Entries to the left of the nearest proxy's one were written by the client.
    chain = "6.6.6.6, 203.0.113.7"
    assert client_from_forwarded_for(chain, trusted) == ipaddress.ip_address("203.0.113.7")


def test_addresses_with_ports_and_brackets_are_understood():
    assert parse_address("203.0.113.7:5555") == ipaddress.ip_address("203.0.113.7")
    assert parse_address("[2001:db8::1]:443") == ipaddress.ip_address("2001:db8::1")
    assert parse_address("2001:db8::1") == ipaddress.ip_address("2001:db8::1")
    assert parse_address('"198.51.100.1"') == ipaddress.ip_address("198.51.100.1")
    assert parse_address("unknown") is None


def test_a_bad_trusted_address_fails_at_start_up():
    with pytest.raises(ImproperlyConfigured, match=r"'10\.0\.0\.300' is not an IP address"):
        TrustedProxies(["127.0.0.1", "10.0.0.300"])


def test_a_unix_socket_peer_is_the_local_proxy():
    request = factory.get("/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="203.0.113.9")
    response = through_proxy_middleware(request, trusted="127.0.0.1", behind_https_proxy=False)
    assert response.remote_addr == "203.0.113.9"


def test_without_a_proxy_nothing_changes_for_direct_clients():
    request = factory.get("/", REMOTE_ADDR="127.0.0.1")
    response = through_proxy_middleware(request, trusted="127.0.0.1", behind_https_proxy=False)
    assert response.status_code == 200
    assert response.remote_addr == "127.0.0.1"
    assert response.secure is False


def test_every_response_gets_the_csp_and_permissions_policy():
    policy = {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "upgrade-insecure-requests": [],
    }
    with override_settings(CONTENT_SECURITY_POLICY=policy, PERMISSIONS_POLICY="camera=()"):
        response = SecurityHeadersMiddleware(lambda request: HttpResponse("x"))(factory.get("/"))
    assert response["Content-Security-Policy"] == (
        "default-src 'self'; img-src 'self' data:; upgrade-insecure-requests"
    )
    assert "Content-Security-Policy-Report-Only" not in response
    assert response["Permissions-Policy"] == "camera=()"


def test_report_only_mode_and_a_views_own_policy():
    with override_settings(CONTENT_SECURITY_POLICY_REPORT_ONLY=True):
        response = SecurityHeadersMiddleware(lambda request: HttpResponse("x"))(factory.get("/"))
    assert response["Content-Security-Policy-Report-Only"].startswith("default-src 'self'")
    assert "Content-Security-Policy" not in response

    def own_policy(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = SecurityHeadersMiddleware(own_policy)(factory.get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


def test_the_django_client_sees_the_headers(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
    assert response["X-Frame-Options"] == "DENY"


def test_policy_strings_pass_through():
    assert build_policy("default-src 'none'") == "default-src 'none'"
