# syntax=docker/dockerfile:1
#
# OneTimeShare: one image for the web server (the default command), the Celery worker and
# beat; docker-compose.yml runs it all three ways. docs/deploy.md has the whole story.
#
#   docker build -t onetimeshare .

# ---- builder: compilers and a virtualenv with the pinned runtime requirements ------------
FROM python:3.11-slim AS builder

# The pinned requirements ship wheels for the usual platforms; the compilers are here for
# any that must build from source on another one (cffi, argon2-cffi), and stay here, as
# does gettext, which compiles the translation catalogues below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential gettext \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt

# The translation catalogues, compiled from their sources (.po) for the image.
COPY django_backend/locale/ /build/locale/
RUN find /build/locale -name "*.mo" -delete \
    && cd /build && /opt/venv/bin/django-admin compilemessages

# ---- runtime: the virtualenv and the app, no compiler -----------------------------------
FROM python:3.11-slim AS runtime

# The app's user has uid/gid 101 on purpose: it is the uid of the worker processes of the
# official nginx images. Stored files are written with mode 0600 (FILE_UPLOAD_PERMISSIONS),
# and nginx reads them from the shared media volume to send offloaded downloads
# (X-Accel-Redirect): it can only do that as their owner. Change both sides together.
ARG APP_UID=101
ARG APP_GID=101

# WEB_CONCURRENCY is gunicorn's own variable for its number of worker processes (threads
# per worker are set in CMD); set it in .env to change it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    WEB_CONCURRENCY=2

RUN groupadd --system --gid "${APP_GID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# The layout of the repository, so that settings find var/ as they do in a checkout:
# /app/django_backend (the code), /app/scripts/entrypoint.sh, /app/var (state).
WORKDIR /app
COPY django_backend/ django_backend/
COPY --from=builder /build/locale/ django_backend/locale/
COPY --chmod=0755 scripts/entrypoint.sh scripts/entrypoint.sh
# Byte code is compiled now, because the code stays read-only to the app's user (and
# PYTHONDONTWRITEBYTECODE keeps it from trying). var/ is the app's: the media and static
# volumes mount at var/media and var/static and take this ownership when first created.
RUN python -m compileall -q django_backend \
    && mkdir -p var/media var/static \
    && chown -R app:app var

USER app:app
EXPOSE 8000

# Liveness only (/health/ touches no dependency). The Host header must be one Django
# accepts: the first entry of DJANGO_ALLOWED_HOSTS (".example.com" stands for example.com).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); u.urlopen(u.Request('http://127.0.0.1:8000/health/', headers={'Host': h if h not in ('', '*') else 'localhost'}), timeout=4)"]

ENTRYPOINT ["/app/scripts/entrypoint.sh"]
# gthread: a slow upload or download holds a thread, not a whole worker process, and is
# never killed by the worker timeout. No access log: paths carry secrets (nginx logs them
# redacted). The heartbeat file goes to memory, not to the container's overlay filesystem.
# gunicorn also reads django_backend/gunicorn.conf.py (its working directory): the /metrics hooks.
CMD ["gunicorn", "core.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--threads", "8", "--worker-tmp-dir", "/dev/shm"]
