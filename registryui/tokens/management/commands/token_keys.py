"""``python manage.py token_keys``: the token signing key, its certificate, and the registry's
``auth.token`` block.

The block goes to standard output (so that it can be redirected into a file); what was done
goes to standard error.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registryui.tokens.keys import (
    ALGORITHMS,
    TokenKeyError,
    load_signing_key,
    resolve_path,
    write_key_pair,
)


def auth_token_block(*, realm: str, service: str, issuer: str, rootcertbundle: str) -> str:
    """The registry configuration's ``auth`` section (YAML; values quoted as JSON strings)."""
    return (
        "auth:\n"
        "  token:\n"
        f"    realm: {json.dumps(realm)}\n"
        f"    service: {json.dumps(service)}\n"
        f"    issuer: {json.dumps(issuer)}\n"
        f"    rootcertbundle: {json.dumps(rootcertbundle)}\n"
    )


class Command(BaseCommand):
    help = (
        "Create the token signing key and a self-signed certificate (unless they exist), and "
        "print the registry's auth.token configuration block."
    )
    # The system checks report a missing key in token mode: the command that makes the key
    # must not be stopped by them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--algorithm",
            choices=ALGORITHMS,
            default="ES256",
            help="ES256 (an EC P-256 key, the default) or RS256 (an RSA key).",
        )
        parser.add_argument(
            "--days", type=int, default=3650, help="How long the certificate is valid."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace an existing key and certificate (every issued token stops working "
            "once the registry has the new certificate).",
        )
        parser.add_argument(
            "--realm",
            default=None,
            help="The token URL as clients reach it (default: TOKEN_REALM).",
        )
        parser.add_argument(
            "--rootcertbundle",
            default=None,
            help="The certificate's path as the registry sees it, e.g. inside its container "
            "(default: TOKEN_CERT_FILE).",
        )

    def handle(self, *args, **options) -> None:
        key_path = resolve_path(settings.TOKEN_KEY_FILE)
        cert_path = resolve_path(settings.TOKEN_CERT_FILE)
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        existing = [p for p in (key_path, cert_path) if p.exists()]
        if existing and not options["force"]:
            if len(existing) == 1:
                raise CommandError(
                    f"Only {existing[0]} exists; pass --force to make a new key and certificate."
                )
            try:
                key = load_signing_key(key_path, cert_path)
            except TokenKeyError as exc:
                raise CommandError(f"{exc} Pass --force to replace both files.") from None
            self.stderr.write(
                f"Keeping the existing {key.algorithm} key {key_path} and certificate "
                f"{cert_path} (valid until {key.not_valid_after:%Y-%m-%d})."
            )
        else:
            try:
                key = write_key_pair(
                    key_path,
                    cert_path,
                    algorithm=options["algorithm"],
                    common_name=settings.TOKEN_ISSUER,
                    days=options["days"],
                )
            except OSError as exc:
                raise CommandError(f"Cannot write the key files: {exc}") from None
            self.stderr.write(
                f"Wrote a new {key.algorithm} key to {key_path} (mode 0600) and its certificate "
                f"to {cert_path} (valid until {key.not_valid_after:%Y-%m-%d})."
            )
        self.stderr.write(
            "Give the registry this configuration (the certificate must be readable at "
            "rootcertbundle), and set TOKEN_AUTH_ENABLED=true here:"
        )
        self.stdout.write(
            auth_token_block(
                realm=options["realm"] or settings.TOKEN_REALM,
                service=settings.TOKEN_SERVICE,
                issuer=settings.TOKEN_ISSUER,
                rootcertbundle=options["rootcertbundle"] or str(cert_path),
            ),
            ending="",
        )
