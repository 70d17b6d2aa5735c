from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo's logins (idempotent): a superuser 'admin'."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", required=True)

    def handle(self, *args, password: str, **options) -> None:
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} the demo login 'admin'.")
