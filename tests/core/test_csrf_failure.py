"""A refused CSRF token gets the site's own 403 page (Django's default uses inline CSS, which
the Content-Security-Policy blocks)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_post_without_a_csrf_token_gets_the_sites_403_page(django_user_model):
    user = django_user_model.objects.create_user("carol", password="a-long-password-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/accounts/logout/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "security token was missing or out of date" in html
    assert "<style" not in html
    assert 'class="site-header"' in html  # the site's layout, not Django's bare page
    # Nothing happened: the user is still logged in.
    assert client.get("/profile/").status_code == 200
