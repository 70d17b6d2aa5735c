# syntax=docker/dockerfile:1
# Registry UI: gunicorn on a slim Python image, as an unprivileged user.
#   docker build -t registryui .        (docker compose up -d builds it for you)
#   docker run registryui               serves on :8000 (migrations first); see docs/OPERATIONS.md
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=registryui.settings \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# The dependencies come from pyproject.toml alone, so that this layer is rebuilt only when they
# change, not on every code change. The app itself runs from /app (templates and static files
# live next to the package), so it is not pip-installed.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# Static files are collected (hashed and compressed for WhiteNoise) into the image. The key is
# a throw-away for this one command: settings refuse to load without one when DEBUG is off.
RUN SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --no-input \
    && python -m compileall -q registryui

# The app's user owns only what it writes: var/ (SQLite, if used) and the token key folders,
# which named volumes mounted there inherit (owner and mode) when they are first created.
RUN groupadd --system --gid 10001 registryui \
    && useradd --system --uid 10001 --gid registryui --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin registryui \
    && mkdir -p /app/var /keys/private /keys/public \
    && chown registryui:registryui /app/var /keys/private /keys/public \
    && chmod 0700 /keys/private
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/bin/sh", "/app/deploy/entrypoint.sh"]
CMD ["web"]
