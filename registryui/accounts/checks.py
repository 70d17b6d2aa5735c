"""System checks for the sign-in settings: a half-configured provider fails at start-up."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from . import oidc


@register()
def sign_in_settings(app_configs, **kwargs) -> list[Error]:
    errors = [Error(problem, id="accounts.E001") for problem in oidc.check_configuration()]
    if settings.LDAP_SERVER_URI:
        try:
            import django_auth_ldap  # noqa: F401
        except ImportError:
            errors.append(
                Error(
                    "LDAP_SERVER_URI is set but django-auth-ldap is not installed.",
                    hint="pip install 'registryui[ldap]' (python-ldap needs libldap2-dev "
                    "and libsasl2-dev to build).",
                    id="accounts.E002",
                )
            )
    return errors
