"""System checks for the sign-in settings: a half-configured OIDC client fails at start-up.

(A missing python-ldap stops settings.py itself, with the same advice.)
"""

from __future__ import annotations

from django.core.checks import Error, register

from . import oidc


@register()
def sign_in_settings(app_configs, **kwargs) -> list[Error]:
    return [Error(problem, id="accounts.E001") for problem in oidc.check_configuration()]
