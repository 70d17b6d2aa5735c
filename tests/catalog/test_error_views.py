"""The site-wide error pages of ``registryui.core.views`` (400, 403, 404, 500)."""

from __future__ import annotations

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.test import RequestFactory

from registryui.core import views
from registryui.urls import handler400, handler403, handler404, handler500


def test_the_handlers_are_wired():
    assert handler400 == "registryui.core.views.bad_request"
    assert handler403 == "registryui.core.views.permission_denied"
    assert handler404 == "registryui.core.views.page_not_found"
    assert handler500 == "registryui.core.views.server_error"


def test_the_403_page_shows_the_reason(catalog):
    request = RequestFactory().get("/r/team-a/api/-/delete")
    request.user = catalog.personas["a_viewer"].user
    response = views.permission_denied(
        request, PermissionDenied("You need the delete permission on team-a/api to do this.")
    )
    page = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in page
    assert "You need the delete permission on team-a/api to do this." in page
    assert '<a href="/profile/">Your teams and permissions</a>' in page


def test_the_400_page_hides_messages_that_are_not_ours(catalog):
    request = RequestFactory().get("/")
    request.user = catalog.personas["superuser"].user
    ours = views.bad_request(request, BadRequest("page='x' is not a page number."))
    assert "page=&#x27;x&#x27; is not a page number." in ours.content.decode()
    theirs = views.bad_request(request, SuspiciousOperation("Invalid HTTP_HOST header: 'x'"))
    page = theirs.content.decode()
    assert theirs.status_code == 400
    assert "The request could not be understood." in page
    assert "HTTP_HOST" not in page
    # The grammar is for references only.
    assert "reference  :=" not in page


def test_a_disallowed_host_gets_the_generic_400(catalog):
    response = catalog.client().get("/", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "The request could not be understood." in response.content.decode()


def test_the_404_page_keeps_the_users_own_message(catalog):
    request = RequestFactory().get("/r/team-a/api/-/delete")
    request.user = catalog.personas["superuser"].user
    response = views.page_not_found(request, Http404("team-a/api has no tag 9.9."))
    page = response.content.decode()
    assert "team-a/api has no tag 9.9." in page
    # An action URL suggests searching the reference it acted on.
    assert 'href="/search/?q=team-a/api"' in page


def test_the_500_page_renders_without_the_database(db, django_assert_num_queries):
    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = views.server_error(request)
    page = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in page
    assert "Traceback" not in page
    assert "Log out" not in page  # no user in the context: nothing to leak or to query
