from __future__ import annotations

from django.urls import path

from . import views

# Included from registryui/urls.py before django.contrib.auth's URLs, so that the login and
# logout pages here replace Django's.
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout, name="logout"),
    path("oidc/start/", views.OIDCStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", views.OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
]
