"""django-auth-ldap's ``AUTH_LDAP_*`` settings, built from the LDAP_* environment variables.

Imported by settings.py only when ``LDAP_SERVER_URI`` is set, since it needs python-ldap.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from registryui.lib.env import env_bool, env_float, env_secret, env_str

GROUP_TYPES = {
    # Name → (django-auth-ldap group type, default object class filter of the group search).
    "groupOfNames": ("GroupOfNamesType", "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": ("GroupOfUniqueNamesType", "(objectClass=groupOfUniqueNames)"),
    "posixGroup": ("PosixGroupType", "(objectClass=posixGroup)"),
    "activeDirectory": ("NestedActiveDirectoryGroupType", "(objectClass=group)"),
}


def ldap_settings(server_uri: str) -> dict[str, Any]:
    try:
        import ldap
        from django_auth_ldap import config
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LDAP_SERVER_URI is set but {exc.name} is not installed: "
            "pip install 'registryui[ldap]' (python-ldap builds against libldap2-dev and "
            "libsasl2-dev)."
        ) from exc

    user_base = env_str("LDAP_USER_BASE", "")
    group_base = env_str("LDAP_GROUP_BASE", "")
    if not user_base:
        raise ImproperlyConfigured("LDAP_SERVER_URI is set: set LDAP_USER_BASE too.")
    group_type = env_str("LDAP_GROUP_TYPE", "groupOfNames")
    if group_type not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"LDAP_GROUP_TYPE={group_type!r}: use one of {', '.join(GROUP_TYPES)}."
        )
    type_name, group_filter = GROUP_TYPES[group_type]
    timeout = env_float("LDAP_TIMEOUT", 5.0)
    connection_options: dict[int, Any] = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        ldap.OPT_REFERRALS: 0,
    }
    ca_file = env_str("LDAP_CA_CERT_FILE", "")
    if ca_file:
        # Per connection, not python-ldap's global options (read once per process); a new
        # TLS context, made last, is what makes OpenSSL take the CA file.
        connection_options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
        connection_options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        connection_options[ldap.OPT_X_TLS_NEWCTX] = 0
    return {
        "AUTH_LDAP_SERVER_URI": server_uri,
        "AUTH_LDAP_BIND_DN": env_str("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env_secret("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": env_bool("LDAP_START_TLS", False),
        "AUTH_LDAP_USER_SEARCH": config.LDAPSearch(
            user_base,
            ldap.SCOPE_SUBTREE,
            env_str("LDAP_USER_FILTER", "(uid=%(user)s)"),
        ),
        "AUTH_LDAP_GROUP_SEARCH": config.LDAPSearch(
            group_base or user_base,
            ldap.SCOPE_SUBTREE,
            env_str("LDAP_GROUP_FILTER", group_filter),
        ),
        "AUTH_LDAP_GROUP_TYPE": getattr(config, type_name)(),
        "AUTH_LDAP_USER_ATTR_MAP": {
            "first_name": env_str("LDAP_ATTR_FIRST_NAME", "givenName"),
            "last_name": env_str("LDAP_ATTR_LAST_NAME", "sn"),
            "email": env_str("LDAP_ATTR_EMAIL", "mail"),
        },
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        # Groups are read at each login, never cached: removing someone at the directory
        # takes the team away at their next login.
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
        "AUTH_LDAP_CONNECTION_OPTIONS": connection_options,
    }
