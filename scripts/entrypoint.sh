#!/usr/bin/env bash
# Start-up for every process of the service (the Docker image's ENTRYPOINT; the
# production-topology test runs it the same way): wait for the database, migrate (under a
# lock, so that replicas starting together take turns), delete stale upload spool files,
# collect static files, then become the command given as arguments (gunicorn, a Celery
# worker, beat), which then receives the container's signals directly.
#
#   SKIP_MIGRATIONS=1     for processes that must not change the schema (worker, beat);
#                         they leave the upload spool to the web processes, too
#   SKIP_COLLECTSTATIC=1  for processes that serve no static files (worker, beat)
#
# `python` is the first one on PATH: the image's virtualenv, or .venv/bin when PATH says so.
set -euo pipefail

cd "$(dirname "$0")/../django_backend"

python manage.py wait_for_db

if [ "${SKIP_MIGRATIONS:-0}" != "1" ]; then
  python manage.py migrate_locked --noinput
  # Uploads cut off by a crash leave their spool files behind; those past the grace period
  # go now, without waiting for the hourly reconcile (a live upload's file is locked).
  python manage.py reconcile_storage --spools-only
fi

if [ "${SKIP_COLLECTSTATIC:-0}" != "1" ]; then
  # Web replicas share one static volume with nginx; collectstatic run by two of them at
  # once trips over each other's files (one deletes what the other is writing, and
  # Django's storage then saves under a new random name). flock makes them take turns on a
  # lock file inside STATIC_ROOT (var/static), which is the shared volume (nginx refuses
  # to serve dot files).
  static_root="../var/static"
  mkdir -p "$static_root"
  if command -v flock >/dev/null 2>&1; then
    flock "$static_root/.collectstatic.lock" python manage.py collectstatic --noinput
  else
    python manage.py collectstatic --noinput
  fi
fi

exec "$@"
