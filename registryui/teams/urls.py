from django.urls import path

from . import views

app_name = "teams"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
]
