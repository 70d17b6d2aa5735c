"""``RejectUnsafeInputMiddleware``: NUL and bytes that are not UTF-8, in the path, the query
string or a form, are refused with a 400 before any view runs (issue 11: the admin's
autocomplete with ``%00`` was a 500 on PostgreSQL). The fuzz test in tests/security sends
them everywhere; this module checks the rule itself."""

from __future__ import annotations

import pytest
from django.test import Client

from registryui.core.middleware import unsafe_form, unsafe_text

pytestmark = pytest.mark.django_db

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"team-a/api", ""),
        ("caf\u00e9 \u2603 \U0001f40b".encode(), ""),
        (b"a\x00b", "a NUL character"),
        (b"\xed\xa0\x80", "bytes that are not UTF-8 text"),  # a lone surrogate, encoded
        (b"\xc0\xaf", "bytes that are not UTF-8 text"),  # an overlong "/"
        (b"\xff", "bytes that are not UTF-8 text"),
    ],
)
def test_the_rule(raw, problem):
    assert unsafe_text(raw) == problem


def test_forms_are_decoded_before_the_check():
    assert unsafe_form(b"q=a%00b") == "a NUL character"
    assert unsafe_form(b"q=%ED%A0%80") == "bytes that are not UTF-8 text"
    assert unsafe_form(b"q=100%25+sure&x=%E2%98%83") == ""


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/r/team-a/a%00pi", "a NUL character in the address"),
        ("/r/team-a/%ED%A0%80", "bytes that are not UTF-8 text in the address"),
        ("/search/?q=%00", "a NUL character in the query string"),
        ("/search/?q=%C0%AF", "bytes that are not UTF-8 text in the query string"),
        ("/search/?%00=1", "a NUL character in the query string"),
        (
            "/admin/autocomplete/?term=%00&app_label=teams&model_name=team_members&field_name=user",
            "a NUL character in the query string",
        ),
    ],
)
def test_pages_answer_400_with_a_sentence(path, where):
    response = Client().get(path, headers=HTML)
    assert response.status_code == 400
    assert f"The request was refused: it contains {where}." in response.content.decode()
    assert "<html" in response.content.decode()  # the site's 400 page


def test_forms_are_refused_before_the_csrf_check_and_the_view():
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/login/",
        "username=a%00b&password=x",
        content_type="application/x-www-form-urlencoded",
        headers=HTML,
    )
    assert response.status_code == 400
    assert "a NUL character in the form" in response.content.decode()
    multipart = client.post("/accounts/login/", {"username": "a\x00b"}, headers=HTML)
    assert multipart.status_code == 400


def test_machine_clients_get_the_registrys_error_format():
    response = Client().get("/auth/token?service=x&scope=repository:a%00:pull")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "code": "INVALID_REQUEST",
                "message": "The request was refused: it contains a NUL character in the "
                "query string.",
            }
        ]
    }


def test_ordinary_input_passes():
    assert Client().get("/search/?q=caf%C3%A9+%E2%98%83", headers=HTML).status_code != 400
    assert Client().get("/healthz").status_code in (200, 503)
