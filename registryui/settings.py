"""Settings for Registry UI, read from the environment (see .env.example for every variable)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from registryui.core.logging import logging_config
from registryui.lib.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    parse_database_url,
    url_netloc,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

#: The development fallback; production start-up refuses it (see "Production" below).
INSECURE_SECRET_KEY = "django-insecure-registryui-development-key-change-me"  # noqa: S105
SECRET_KEY = env_secret("SECRET_KEY", INSECURE_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "registryui.core",
    "registryui.catalog",
    "registryui.teams",
    "registryui.accounts",
    "registryui.webhooks",
    "registryui.cleanup",
    "registryui.overview",
    "registryui.events",
    "registryui.sync",
    "registryui.browse",
    "registryui.ops",
    "registryui.storage",
    "registryui.tokens",
]

MIDDLEWARE = [
    "registryui.core.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Request latency per view for /metrics (registryui.ops.metrics), around all the rest.
    "registryui.ops.metrics.RequestMetricsMiddleware",
    "registryui.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "registryui.core.middleware.RejectUnsafeInputMiddleware",
    "registryui.catalog.middleware.RegistryBudgetMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "registryui.urls"
WSGI_APPLICATION = "registryui.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registryui.core.context_processors.site",
                "registryui.teams.context_processors.access",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'registryui.sqlite3'}")
DATABASES = {"default": parse_database_url(DATABASE_URL, base_dir=BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:repositories"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env_str(
            "STATICFILES_BACKEND", "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# -- the upstream registry ----------------------------------------------------------------------
REGISTRY_URL = env_str("REGISTRY_URL", "http://127.0.0.1:5000")
REGISTRY_USERNAME = env_str("REGISTRY_USERNAME", "")
REGISTRY_PASSWORD = env_secret("REGISTRY_PASSWORD", "")
#: What users type in ``docker pull HOST/…``: by default the host (and port) of REGISTRY_URL.
REGISTRY_PUBLIC_HOST = env_str("REGISTRY_PUBLIC_HOST", "") or url_netloc(REGISTRY_URL)
REGISTRY_CONNECT_TIMEOUT = env_float("REGISTRY_CONNECT_TIMEOUT", 3.05)
REGISTRY_READ_TIMEOUT = env_float("REGISTRY_READ_TIMEOUT", 30.0)
REGISTRY_RETRIES = env_int("REGISTRY_RETRIES", 3, minimum=0)
SYNC_CONCURRENCY = env_int("SYNC_CONCURRENCY", 8, minimum=1)
#: Requests a second the sync (and the worker) may send the registry, shared by all its threads
#: (a token bucket); 0 = unlimited (the demo's default). Set it in production: see OPERATIONS.md.
SYNC_MAX_RPS = max(env_float("SYNC_MAX_RPS", 0.0), 0.0)
#: Repositories asked for per /v2/_catalog page (registry 2.8 rejects more than 1000).
SYNC_CATALOG_PAGE_SIZE = env_int("SYNC_CATALOG_PAGE_SIZE", 1000, minimum=1)
#: Seconds a page or action a user waits on (delete, retag, retention run) may spend on the
#: registry in all, retries included; the sync keeps the longer timeouts above.
REGISTRY_INTERACTIVE_TIMEOUT = env_float("REGISTRY_INTERACTIVE_TIMEOUT", 10.0)
#: After a registry request of a page failed to connect or timed out, pages answer "the
#: registry is not answering" at once for this many seconds instead of waiting again.
REGISTRY_DOWN_FOR = env_float("REGISTRY_DOWN_FOR", 15.0)

# -- token server for docker push/pull (registryui.tokens; README "Token authentication") ------
#: The registry runs with ``auth.token`` pointing at /auth/token: the endpoint answers, and the
#: app signs its own registry tokens in-process with the same key.
TOKEN_AUTH_ENABLED = env_bool("TOKEN_AUTH_ENABLED", False)
#: ``iss`` of every token; the registry's ``auth.token.issuer`` must be the same string.
TOKEN_ISSUER = env_str("TOKEN_ISSUER", "registryui")
#: ``aud`` of every token; the registry's ``auth.token.service`` must be the same string.
TOKEN_SERVICE = env_str("TOKEN_SERVICE", "registry")
#: The token URL as clients reach it (the registry's ``auth.token.realm``), for `token_keys`.
TOKEN_REALM = env_str("TOKEN_REALM", "http://127.0.0.1:8000/auth/token")
#: PEM private key (EC P-256 → ES256, RSA → RS256) and its certificate, made by `token_keys`.
TOKEN_KEY_FILE = env_str("TOKEN_KEY_FILE", str(VAR_DIR / "token" / "key.pem"))
TOKEN_CERT_FILE = env_str("TOKEN_CERT_FILE", str(VAR_DIR / "token" / "cert.pem"))
#: Seconds a registry token lives.
TOKEN_EXPIRY = env_int("TOKEN_EXPIRY", 300, minimum=30)
# The login rate limit (LOGIN_FAILURE_LIMIT, below) covers /auth/token too; the old names
# TOKEN_LOGIN_FAILURE_LIMIT and TOKEN_LOGIN_FAILURE_WINDOW are still read as its defaults.

# -- sign-in: passwords, OIDC, LDAP (registryui.accounts; README "Single sign-on") -----------
#: Password checks per user name and client address (web, admin, /auth/token, LDAP) before
#: the next one is refused unchecked until LOGIN_FAILURE_WINDOW seconds after the last one.
LOGIN_FAILURE_LIMIT = env_int(
    "LOGIN_FAILURE_LIMIT", env_int("TOKEN_LOGIN_FAILURE_LIMIT", 10, minimum=1), minimum=1
)
LOGIN_FAILURE_WINDOW = env_int(
    "LOGIN_FAILURE_WINDOW", env_int("TOKEN_LOGIN_FAILURE_WINDOW", 300, minimum=1), minimum=1
)
#: Show the password form on /accounts/login/ (off: only "Sign in with …"; the admin's login
#: page still takes local passwords, e.g. the first superuser's).
LOGIN_PASSWORD_FORM = env_bool("LOGIN_PASSWORD_FORM", True)

#: OpenID Connect: the provider's discovery URL turns it on (mozilla-django-oidc).
OIDC_DISCOVERY_URL = env_str("OIDC_DISCOVERY_URL", "")
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET", "")
#: "Sign in with <name>" on the login page.
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile groups")
#: The claim (in the ID token or the userinfo answer) listing the user's groups.
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
OIDC_DISCOVERY_TTL = env_int("OIDC_DISCOVERY_TTL", 3600, minimum=0)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
#: Kept in the session for the provider's logout (``id_token_hint``).
OIDC_STORE_ID_TOKEN = True
OIDC_CREATE_USER = True
OIDC_OP_LOGOUT_URL_METHOD = "registryui.accounts.oidc.provider_logout_url"
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"

#: LDAP / Active Directory (django-auth-ldap): the server URI turns it on.
LDAP_SERVER_URI = env_str("LDAP_SERVER_URI", "")
#: LDAP users may give their directory password to `docker login` (/auth/token).
LDAP_TOKEN_PASSWORDS = env_bool("LDAP_TOKEN_PASSWORDS", False)

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_DISCOVERY_URL:
    AUTHENTICATION_BACKENDS.append("registryui.accounts.oidc.OIDCBackend")
if LDAP_SERVER_URI:
    from registryui.accounts.ldap_settings import ldap_settings

    AUTHENTICATION_BACKENDS.append("registryui.accounts.ldap.LDAPBackend")
    globals().update(ldap_settings(LDAP_SERVER_URI))

# -- browse pages (registryui.catalog: freshness banners) --------------------------------------
#: Seconds after the last complete sync when pages say the data may be out of date.
SYNC_STALE_AFTER = env_int("SYNC_STALE_AFTER", 3600, minimum=1)

# -- registry notifications and the sync worker (registryui.events; README "Registry notifications")
#: The shared secret the registry sends as ``Authorization: Bearer <token>`` to /events/registry.
#: Empty turns the endpoint off (it answers 503). REGISTRY_EVENTS_TOKEN_FILE also works.
REGISTRY_EVENTS_TOKEN = env_secret("REGISTRY_EVENTS_TOKEN", "")
#: Record pulls from the second notification endpoint, /events/registry/pulls (issue 16; README
#: "Pull activity"). Off: that endpoint answers 204 and stores nothing.
PULL_TRACKING = env_bool("PULL_TRACKING", False)
#: Days of pull history kept (``events.PullDay`` rows; the worker prunes older days after each
#: full sync). 0 keeps every day. Pull rules and the stale view count "pull tracking" as
#: started no earlier than the oldest day kept, so a window longer than this keeps images.
PULL_HISTORY_DAYS = env_int("PULL_HISTORY_DAYS", 400, minimum=0)
#: Seconds between the starts of two full syncs of ``sync_registry --loop`` (its --interval).
SYNC_INTERVAL = env_int("SYNC_INTERVAL", 600, minimum=1)

# -- mail (only the password reset form sends any) ---------------------------------------------
#: An SMTP server; without one the password reset pages are not routed (registryui/urls.py).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "registryui@localhost")
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)

# -- sessions, cookies, security ----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
#: The site's own 403 page (Django's default has inline CSS, which the CSP blocks).
CSRF_FAILURE_VIEW = "registryui.core.views.csrf_failure"

# == Production (deployment: docs/OPERATIONS.md) ==============================================
# Everything below hardens the app for serving real users; `manage.py check --deploy` is clean
# with the variables documented in .env.example (BEHIND_HTTPS_PROXY=true and a real key).

#: The keys every production start-up refuses: the development fallback, the placeholder of
#: old .env.example files, and nothing at all.
REFUSED_SECRET_KEYS = frozenset({INSECURE_SECRET_KEY, "change-me-to-a-long-random-string", ""})
if "pytest" in sys.modules and SECRET_KEY == INSECURE_SECRET_KEY:
    # The test suite runs with DEBUG off but is no deployment. Export a throwaway key so that
    # the servers and workers the tests start as subprocesses inherit it and start too.
    SECRET_KEY = os.environ["SECRET_KEY"] = "tests-only-" + secrets.token_urlsafe(48)
if not DEBUG and SECRET_KEY in REFUSED_SECRET_KEYS:
    raise ImproperlyConfigured(
        "Refusing to start with DEBUG off and "
        + ("no SECRET_KEY" if not SECRET_KEY else "the default SECRET_KEY")
        + ": set SECRET_KEY (or SECRET_KEY_FILE) to a long random string, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
        "or set DEBUG=true on a development machine."
    )
#: Old keys still accepted for sessions and signed data while a new SECRET_KEY rolls out.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

#: Browsers reach the UI over HTTPS through a TLS-terminating reverse proxy that sets
#: ``X-Forwarded-Proto``. Turns on the HTTPS redirect, secure cookies and HSTS. Off by default
#: so that plain-HTTP development and the test client work; .env.example turns it on.
BEHIND_HTTPS_PROXY = env_bool("BEHIND_HTTPS_PROXY", False)
#: Addresses (IPs, networks, or ``*``) of the proxies allowed to set X-Forwarded-Proto and
#: X-Forwarded-For; gunicorn reads the same variable for its ``forwarded_allow_ips``.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS", ["127.0.0.1", "::1"])
if BEHIND_HTTPS_PROXY:
    # registryui.core.middleware.TrustedProxyMiddleware drops this header unless it comes
    # from FORWARDED_ALLOW_IPS, so a client cannot claim HTTPS for itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Machine-to-machine endpoints on the internal network speak plain HTTP: the registry's
    # notifications (a redirect would count as delivered and lose the event) and health checks.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^events/registry$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if BEHIND_HTTPS_PROXY else 0, minimum=0
)
# Off unless asked for: both reach beyond this host (every subdomain; browsers' built-in preload
# lists) and are hard to undo, so they are an operator's choice (docs/OPERATIONS.md), and
# `check --deploy` need not repeat them at every start.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    *(["security.W005"] if not SECURE_HSTS_INCLUDE_SUBDOMAINS else []),
    *(["security.W021"] if not SECURE_HSTS_PRELOAD else []),
]
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

#: The Content-Security-Policy of every response (registryui.core.middleware): scripts,
#: styles, fonts and images only from our own static files, no inline code, no eval (htmx
#: runs with ``allowEval: false``), no plugins, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
#: Report violations without blocking (default in DEBUG, where Django's error pages use
#: inline code).
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", DEBUG)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# -- automation: /metrics and outgoing webhooks -------------------------------------------------
#: ``/metrics`` (Prometheus text format) answers a request that carries
#: ``Authorization: Bearer METRICS_TOKEN`` (when set) or comes from one of these networks
#: (by default this host only). Anyone else gets 403.
METRICS_TOKEN = env_secret("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
#: Seconds a webhook receiver may take to answer one delivery.
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
#: Attempts before a delivery is marked failed; the first retry waits WEBHOOK_BACKOFF_BASE
#: seconds, each next one twice as long (up to an hour), with jitter.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 16, minimum=1)
WEBHOOK_BACKOFF_BASE = env_float("WEBHOOK_BACKOFF_BASE", 5.0)
#: Webhook URLs resolving into these networks are refused at send time: a team admin's URL
#: must not reach this host's own services or a cloud metadata endpoint. Private networks
#: (10/8, 192.168/16, ...) stay allowed: CI servers and chat bridges often live there.
WEBHOOK_BLOCKED_NETWORKS = env_list(
    "WEBHOOK_BLOCKED_NETWORKS",
    ["127.0.0.0/8", "::1/128", "0.0.0.0/8", "169.254.0.0/16", "fe80::/10"],
)

#: One JSON object per line on stdout (``json``), or readable lines (``plain``).
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use json or plain.")
LOGGING = logging_config(level=env_str("LOG_LEVEL", "INFO"), fmt=LOG_FORMAT)
