from __future__ import annotations

from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("auth/token", views.token, name="token"),
    path("profile/tokens/", views.personal_tokens, name="personal_tokens"),
    path(
        "profile/tokens/<int:pk>/revoke", views.revoke_personal_token, name="revoke_personal_token"
    ),
    path("profile/robots/", views.robots, name="robots"),
    path("profile/robots/<int:pk>/revoke", views.revoke_robot, name="revoke_robot"),
]
