from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update a user of the provider and set their groups."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("password")
        parser.add_argument("--email", default="")
        parser.add_argument("--groups", default="", help="Comma-separated group names.")

    def handle(self, *args, username, password, email, groups, **options) -> None:
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.email = email
        user.save()
        names = [g for g in groups.split(",") if g]
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in names])
