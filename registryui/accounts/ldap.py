"""Passwords checked against an LDAP directory or Active Directory (django-auth-ldap), with
the directory's groups mapped to teams like OIDC groups.

Only loaded when ``LDAP_SERVER_URI`` is set (``settings.AUTHENTICATION_BACKENDS``); python-ldap
is then required. The password is checked inside Django's ``authenticate``, which
``passwords.authenticate`` calls after the rate limit, so directory passwords are limited and
audited like local ones.
"""

from __future__ import annotations

import logging

import ldap
from django.conf import settings
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend as BaseLDAPBackend
from django_auth_ldap.backend import ldap_error

from .memberships import follow_groups
from .models import Provider

log = logging.getLogger(__name__)

#: The errors that mean "the directory did not answer" rather than "no such user".
UNREACHABLE = (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR)


@receiver(ldap_error, dispatch_uid="registryui-ldap-unreachable")
def _note_unreachable(sender, context, user, request, exception, **kwargs) -> None:
    # The login form tells the user (and answers 503) instead of "wrong password".
    if request is not None and isinstance(exception, UNREACHABLE):
        request.directory_unavailable = True


class LDAPBackend(BaseLDAPBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        # docker login sends the password to /auth/token; directory passwords are accepted
        # there only when the site allows it (LDAP_TOKEN_PASSWORDS).
        if kwargs.get("via") == "token" and not settings.LDAP_TOKEN_PASSWORDS:
            return None
        return super().authenticate(request, username=username, password=password)

    def get_user(self, user_id):
        # Like Django's ModelBackend: deactivating someone ends their sessions too.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        request = getattr(ldap_user, "_request", None)
        try:
            # Group DNs (lower case) and their names (cn): a mapping may name either.
            groups = set(ldap_user.group_dns) | set(ldap_user.group_names)
        except ldap.LDAPError as exc:
            # Without the groups the memberships cannot be brought up to date: no login.
            log.warning("LDAP group search failed for %s: %s", user, exc)
            if request is not None and isinstance(exc, UNREACHABLE):
                request.directory_unavailable = True
            return None
        follow_groups(user, groups, Provider.LDAP, request=request)
        return user
