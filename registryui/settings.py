"""Settings for Registry UI, read from the environment (see .env.example for every variable)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from registryui.lib.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

#: The development fallback; production start-up refuses it (see registryui/checks.py).
INSECURE_SECRET_KEY = "django-insecure-registryui-development-key-change-me"
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
    "registryui.cleanup",
    "registryui.events",
    "registryui.tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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
REGISTRY_PUBLIC_HOST = env_str("REGISTRY_PUBLIC_HOST", "") or (urlsplit(REGISTRY_URL).netloc or "")
REGISTRY_CONNECT_TIMEOUT = env_float("REGISTRY_CONNECT_TIMEOUT", 3.05)
REGISTRY_READ_TIMEOUT = env_float("REGISTRY_READ_TIMEOUT", 30.0)
REGISTRY_RETRIES = env_int("REGISTRY_RETRIES", 3, minimum=0)
SYNC_CONCURRENCY = env_int("SYNC_CONCURRENCY", 8, minimum=1)
#: Repositories asked for per /v2/_catalog page (registry 2.8 rejects more than 1000).
SYNC_CATALOG_PAGE_SIZE = env_int("SYNC_CATALOG_PAGE_SIZE", 1000, minimum=1)

# -- sessions, cookies, security ----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
    },
}
