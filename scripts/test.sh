#!/usr/bin/env bash
# Runs the suite twice: on PostgreSQL (127.0.0.1:5432 unless TEST_POSTGRES_URL says
# otherwise) and on SQLite. Tests marked `postgresql` (advisory locks, the production
# topology) run in the first pass only, tests marked `e2e` (the browser, which brings its
# own server) in the second only; every other test runs in both. Without a reachable
# PostgreSQL the first pass is skipped and the summary says so, unless REQUIRE_POSTGRES=1
# (CI), where that is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=".venv/bin/pytest"
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/onetimeshare}"

pg_up() {
  .venv/bin/python - "$PG_URL" <<'PY'
import sys
import psycopg
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
try:
    psycopg.connect(host=u.hostname, port=u.port or 5432, user=u.username or "postgres",
                    password=u.password, dbname="postgres", connect_timeout=3).close()
except Exception as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
PY
}

status=0
summary=()
if pg_up; then
  echo "== PostgreSQL: $PG_URL"
  DATABASE_URL="$PG_URL" "$PYTEST" -m "not e2e" "$@"; rc=$?
  summary+=("PostgreSQL: exit $rc"); [ $rc -eq 0 ] || status=$rc
elif [ "${REQUIRE_POSTGRES:-0}" = "1" ]; then
  echo "PostgreSQL is required (REQUIRE_POSTGRES=1) but not reachable at $PG_URL" >&2
  summary+=("PostgreSQL: NOT REACHABLE (required)"); status=1
else
  summary+=("PostgreSQL: SKIPPED, no server reachable at $PG_URL (start one, or set TEST_POSTGRES_URL)")
fi

echo "== SQLite"
DATABASE_URL="sqlite:///$PWD/var/db.sqlite3" "$PYTEST" -m "not postgresql" "$@"; rc=$?
summary+=("SQLite: exit $rc (tests marked postgresql ran in the PostgreSQL pass; e2e runs here)")
[ $rc -eq 0 ] || status=$rc

echo
echo "== Summary"
printf '  %s\n' "${summary[@]}"
exit $status
