"""Purge benchmark: what the periodic purge_shares job costs as history grows, on PostgreSQL.

What it measures
    purge_shares runs every minute. It deletes the bytes of ended shares, and the rows (with
    their timelines) of shares purged longer ago than SHARE_RETENTION_DAYS. Its cost should
    follow its work, not the history the database keeps for the audit trail. For each
    ``--rows`` N (default 1,000 and 1,000,000):

    1. It creates a dedicated database (``--database``, default ``ots_bench_purge``; dropped
       first if it exists, and dropped at the end) on the server of ``--server-url``, and
       migrates it with the code under test.
    2. It builds the history with ``generate_series`` in SQL: N shares, ended (downloaded)
       and purged at random moments within the retention period, with three events each
       (created, download started, file deleted): 3N events. Plus ``--active`` shares that
       are active (not ended, bytes stored). Then ``VACUUM ANALYZE``, as autovacuum would.
    3. In a fresh Python process running the code under test (production settings: debug
       off; the environment the tests give app processes), steady state: purge_shares
       ``--repeats`` times, nothing to purge or delete; each run's wall time and number of
       SQL statements. The plan of each SELECT the job sends that filters on purged_at is
       shown with ``EXPLAIN (ANALYZE, BUFFERS)``, inside a transaction rolled back.
    4. Backlog: ``--backlog`` of the purged shares (default 33,000, the oldest ids) are moved
       past retention, as after a downtime (then ``VACUUM ANALYZE``). In the same process,
       its resident-set peak counter reset (``echo 5 > /proc/self/clear_refs``), one
       purge_shares deletes them: wall time, statements, rows deleted, and the process's
       peak RSS (VmHWM) above its RSS before the run. The rows and events left are counted
       afterwards: N - backlog shares and 3(N - backlog) events, or the run fails.

    With ``--ref`` the code under test is that commit's django_backend, exported with git
    archive (bench/served_app.py), e.g. the commit before the change to compare.

How to run
    .venv/bin/python bench/purge.py                      # 1k and 1M rows, working tree
    .venv/bin/python bench/purge.py --ref HEAD           # the last commit
    .venv/bin/python bench/purge.py --rows 1000000 --ref 40af431~1   # before the index

Needs a PostgreSQL server (``--server-url``, default postgres://postgres@127.0.0.1:5432/)
whose user may create databases. Building 1M rows takes about a minute. Prints the
command, a Markdown table, and the plans.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from served_app import PYTHON, checkout, loopback_server_env

EVENT_KINDS = ("created", "download_started", "purged")
RETENTION_DAYS = 30  # .env.sample's SHARE_RETENTION_DAYS, set explicitly for the worker
MIB = 1024 * 1024

# The worker: runs in the code under test's django_backend, prints one JSON object.
WORKER = textwrap.dedent(
    """
    import json, statistics, sys, time
    from pathlib import Path

    import django
    django.setup()
    from django.db import connection
    from apps.shares.services import maintenance

    repeats, backlog, retention = (int(arg) for arg in sys.argv[1:4])
    statements = []

    def record(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, params, time.perf_counter() - started))

    def status_kib(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])

    def timed_purge():
        statements.clear()
        with connection.execute_wrapper(record):
            started = time.perf_counter()
            result = maintenance.shares_purge()
            elapsed = time.perf_counter() - started
        return elapsed, len(statements), result

    out = {"steady": []}
    timed_purge()  # warm-up: imports, connection, first plans
    for _ in range(repeats):
        elapsed, count, result = timed_purge()
        out["steady"].append({"seconds": elapsed, "statements": count,
                              "sql_seconds": sum(s[2] for s in statements),
                              "rows_deleted": result.rows_deleted, "shares": result.shares})

    # The plans of the job's SELECTs of shares, as it sent them.
    plans = []
    for sql, params, _ in list(statements):
        if sql.startswith("SELECT") and 'FROM "shares_share"' in sql:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                query = ("rows past retention" if '"purged_at" <' in sql
                         else "ended shares whose bytes are stored")
                plans.append([query, *(row[0] for row in cursor.fetchall())])
                cursor.execute("ROLLBACK")
    out["plans"] = plans

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE shares_share SET purged_at = now() - make_interval(days => %s)"
            " - random() * interval '1 day'"
            " WHERE id IN (SELECT id FROM shares_share WHERE purged_at IS NOT NULL"
            " ORDER BY id LIMIT %s)",
            [retention + 1, backlog],
        )
        cursor.execute("VACUUM ANALYZE shares_share")
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    elapsed, count, result = timed_purge()
    out["backlog"] = {"seconds": elapsed, "statements": count,
                      "sql_seconds": sum(s[2] for s in statements),
                      "rows_deleted": result.rows_deleted,
                      "rss_before_kib": before, "peak_kib": status_kib("VmHWM")}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM shares_share WHERE purged_at IS NOT NULL")
        out["shares_left"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM shares_shareevent")
        out["events_left"] = cursor.fetchone()[0]
    print(json.dumps(out))
    """
)


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def admin_connection(server_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url(server_url, "postgres"), autocommit=True)


def recreate_database(server_url: str, name: str) -> None:
    with admin_connection(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    with admin_connection(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_history(url: str, rows: int, active: int) -> float:
    """`rows` ended shares purged within retention with three events each, and `active`
    active shares; returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO shares_share (share_token_hash, manage_token_hash, storage_name, name,
                size, sha256, content_type, password, max_downloads, downloads, created_at,
                expires_at, consumed_at, revoked_at, purged_at, quarantined_at, owner_id)
            SELECT md5('share:' || i), md5('manage:' || i), 'shares/bench-' || i,
                'file-' || i || '.txt', 1000 + i %% 5000, repeat('0', 64), 'text/plain', '',
                1, 1, purged - interval '1 hour', purged + interval '1 day',
                purged - interval '1 minute', NULL, purged, NULL, NULL
            FROM (
                SELECT i, now() - random() * make_interval(days => %(retention)s - 1) AS purged
                FROM generate_series(1, %(rows)s) AS i
            ) AS history
            """,
            {"rows": rows, "retention": RETENTION_DAYS},
        )
        conn.execute(
            """
            INSERT INTO shares_share (share_token_hash, manage_token_hash, storage_name, name,
                size, sha256, content_type, password, max_downloads, downloads, created_at,
                expires_at)
            SELECT md5('active-share:' || i), md5('active-manage:' || i),
                'shares/active-' || i, 'active-' || i || '.txt', 1000, repeat('0', 64),
                'text/plain', '', 1, 0, now(), now() + interval '1 day'
            FROM generate_series(1, %(active)s) AS i
            """,
            {"active": active},
        )
        conn.execute(
            """
            INSERT INTO shares_shareevent (share_id, kind, at, agent, is_bot, client)
            SELECT share.id, kind, share.purged_at, 'system', false, ''
            FROM shares_share AS share CROSS JOIN unnest(%(kinds)s::text[]) AS kind
            WHERE share.purged_at IS NOT NULL
            """,
            {"kinds": list(EVENT_KINDS)},
        )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def measure(django_dir: Path, env: dict[str, str], args: argparse.Namespace) -> dict:
    completed = subprocess.run(
        [PYTHON, "-c", WORKER, str(args.repeats), str(args.backlog), str(RETENTION_DAYS)],
        cwd=django_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=args.deadline,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the worker failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_size(rows: int, django_dir: Path, tmp: Path, args: argparse.Namespace) -> dict:
    url = database_url(args.server_url, args.database)
    recreate_database(args.server_url, args.database)
    env = loopback_server_env(
        tmp,
        DATABASE_URL=url,
        MEDIA_ROOT=str(tmp / "media"),
        SHARE_RETENTION_DAYS=str(RETENTION_DAYS),
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=django_dir,
        env=env,
        check=True,
        timeout=300,
    )
    build_seconds = build_history(url, rows, args.active)
    print(f"built {rows:,} purged shares and {args.active:,} active in {build_seconds:.1f} s")
    result = measure(django_dir, env, args)
    backlog = min(args.backlog, rows)
    expected_events = len(EVENT_KINDS) * (rows - backlog)
    if result["backlog"]["rows_deleted"] != backlog or result["shares_left"] != rows - backlog:
        raise RuntimeError(f"the backlog was not deleted as expected: {result}")
    if result["events_left"] != expected_events:
        raise RuntimeError(f"{result['events_left']} events left, not {expected_events}")
    result["rows"] = rows
    return result


def report(results: list[dict], code: str) -> str:
    lines = [
        f"Code: {code}.",
        "",
        "| shares (events) | steady run: median ms (runs) | of which in SQL (ms) "
        "| steady statements | backlog rows | backlog run (s) | backlog statements "
        "| RSS before (MiB) | peak RSS growth (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        steady = result["steady"]
        times = [run["seconds"] * 1000 for run in steady]
        sql_ms = statistics.median(run["sql_seconds"] * 1000 for run in steady)
        backlog = result["backlog"]
        growth = (backlog["peak_kib"] - backlog["rss_before_kib"]) / 1024
        lines.append(
            f"| {result['rows']:,} ({3 * result['rows']:,}) "
            f"| {statistics.median(times):.2f} ({', '.join(f'{t:.1f}' for t in times)}) "
            f"| {sql_ms:.2f} | {steady[0]['statements']} | {backlog['rows_deleted']:,} "
            f"| {backlog['seconds']:.2f} | {backlog['statements']} "
            f"| {backlog['rss_before_kib'] / 1024:.1f} | {growth:.1f} |"
        )
    for result in results:
        for query, *plan in result["plans"]:
            lines += ["", f"Plan at {result['rows']:,} shares, steady state: {query}", "", "```"]
            lines += plan
            lines.append("```")
    return "\n".join(lines)


def parse_rows(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=parse_rows, default=[1000, 1_000_000], help="e.g. 1000,1000000"
    )
    parser.add_argument("--backlog", type=int, default=33_000, help="rows past retention")
    parser.add_argument("--active", type=int, default=1000, help="active shares besides")
    parser.add_argument("--repeats", type=int, default=5, help="steady-state runs timed")
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432/")
    parser.add_argument("--database", default="ots_bench_purge", help="dropped and recreated")
    parser.add_argument("--ref", default=None, help="benchmark this commit (git archive)")
    parser.add_argument("--deadline", type=int, default=1800, help="seconds per measurement")
    args = parser.parse_args(argv)

    print("command:", shlex.join([PYTHON, *sys.argv]), flush=True)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ots-bench-purge-"))
    try:
        django_dir, _, code = checkout(tmp, args.ref)
        with psycopg.connect(database_url(args.server_url, "postgres")) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
        results = [run_size(rows, django_dir, tmp, args) for rows in args.rows]
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        try:
            drop_database(args.server_url, args.database)
        except psycopg.Error as exc:
            print(f"could not drop {args.database}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(results, f"{code}, PostgreSQL {server}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
