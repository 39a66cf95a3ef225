"""Landing-page benchmark: requests per second of GET /s/<token> against GET /health/.

What it measures
    The landing page is what every recipient and every link-preview bot opens. Its cost is
    read against the cheapest page the app serves, /health/ (touches no dependency), in the
    same run, through the same gunicorn, on the same machine: the ratio of their request
    rates is what the page costs beyond the server's fixed cost per request.

    1. It creates a dedicated PostgreSQL database (``--database``, default
       ``ots_bench_landing``, dropped first and at the end) on ``--server-url``.
    2. It starts gunicorn as production and ``make run`` do: through scripts/entrypoint.sh
       (wait for the database, migrate, collectstatic, exec) with the worker class,
       workers and threads of the Procfile's ``web`` line (``--workers``/``--threads``
       override them), debug off, in the environment the tests give app processes
       (.env.sample's defaults; the process harness of django_backend/tests/support).
       What it serves is a copy in a temporary directory (of the working tree, or of
       ``--ref`` exported with git archive), so that the entrypoint's collectstatic never
       writes the repository's var/static, which the tests read.
    3. It creates one share with ``manage.py create_share`` and takes its link.
    4. The load generator is wrk (Debian's package; ``--wrk``), ``--connections`` (100)
       connections on ``--client-threads`` (2) threads, keep-alive, with a link-preview
       bot's User-Agent. After a short warm-up of each URL, ``--rounds`` rounds of
       ``--duration`` seconds per URL, alternating which goes first. Each run: requests per
       second, latency percentiles, and the CPU time per request of the gunicorn workers,
       of the PostgreSQL backends serving this database (from pg_stat_activity and
       /proc) and of wrk itself (the machine's two cores are shared by all three).
    5. Every landing response must be a 200 (wrk counts the others), and the timeline must
       hold an "opened" event for at least every request wrk completed.

    The ratio reported is landing requests per second over /health/'s, per round, and of
    the medians.

How to run
    .venv/bin/python bench/landing.py                 # working tree, 3 rounds of 15 s
    .venv/bin/python bench/landing.py --ref HEAD      # the last commit (git archive)
    .venv/bin/python bench/landing.py --rounds 5 --duration 20

Needs wrk (``apt-get install wrk``) and a PostgreSQL server whose user may create
databases. gunicorn is stopped and the database dropped in every case.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from process_stats import cpu_seconds, total_cpu_seconds
from served_app import (
    PYTHON,
    REPO_DIR,
    answers,
    checkout,
    free_port,
    git,
    gunicorn,
    loopback_server_env,
    running,
)

USER_AGENT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
START_TIMEOUT = 90  # the entrypoint migrates and collects static files first
WARM_UP_SECONDS = 3


def procfile_gunicorn(ref: str | None) -> tuple[int, int]:
    """(workers, threads) of the Procfile's web process, as `make run` starts it (the
    Procfile of `ref` when given)."""
    text = git("show", f"{ref}:Procfile") if ref else (REPO_DIR / "Procfile").read_text()
    for line in text.splitlines():
        if line.startswith("web:"):
            words = shlex.split(line.split(":", 1)[1])
            workers = int(words[words.index("--workers") + 1])
            threads = int(words[words.index("--threads") + 1])
            return workers, threads
    raise RuntimeError("no web: line in the Procfile")


def served_tree(ref: str | None, tmp: Path) -> tuple[Path, Path, str]:
    """The django_backend to serve, the entrypoint.sh beside it, and a description.

    The entrypoint serves the django_backend next to it and collects static files into
    ../var/static from there, so the served tree is always a copy in `tmp`: the working
    tree's (as it is now) or `ref`'s (git archive), never the repository itself, whose
    var/static the tests and `make run` read.
    """
    if ref is None:
        _, _, description = checkout(tmp, None)
        src = tmp / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO_DIR / "django_backend", src / "django_backend", ignore=ignore)
        shutil.copytree(REPO_DIR / "scripts", src / "scripts", ignore=ignore)
        return src / "django_backend", src / "scripts" / "entrypoint.sh", description
    django_dir, _, description = checkout(tmp, ref)
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", ref, "scripts/entrypoint.sh"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp / "src")], input=archive, check=True)
    return django_dir, tmp / "src" / "scripts" / "entrypoint.sh", description


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def recreate_database(server_url: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            admin.execute(f'CREATE DATABASE "{name}"')


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL server processes serving the app's connections to its database."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def opened_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM shares_shareevent WHERE kind = 'opened'"
        ).fetchone()[0]


@dataclass
class Run:
    name: str
    requests: int
    seconds: float
    rate: float
    latency_ms: dict[str, float]
    non_2xx: int
    socket_errors: str
    cpu_ms: dict[str, float] = field(default_factory=dict)


def milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def parse_wrk(name: str, output: str) -> Run:
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    seconds = milliseconds(total.group(2) + total.group(3)) / 1000
    latency = {
        f"p{pct}": milliseconds(value)
        for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return Run(
        name=name,
        requests=int(total.group(1)),
        seconds=seconds,
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        latency_ms=latency,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1) if errors else "",
    )


def load(wrk: str, url: str, seconds: int, args: argparse.Namespace) -> str:
    command = [
        wrk,
        *("-t", str(args.client_threads), "-c", str(args.connections)),
        *("-d", f"{seconds}s", "--timeout", "10s", "--latency"),
        *("-H", f"User-Agent: {USER_AGENT}"),
        url,
    ]
    return subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=seconds + 60
    ).stdout


def measured(
    name: str, wrk: str, url: str, workers: list[int], db_url: str, args: argparse.Namespace
) -> Run:
    backends_before = {pid: cpu_seconds(pid) for pid in backend_pids(db_url)}
    workers_before = total_cpu_seconds(workers)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = load(wrk, url, args.duration, args)
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = total_cpu_seconds(workers) - workers_before
    # Backends that connected during the run count from zero; one that ended during it is
    # missed (connections live DATABASE_CONN_MAX_AGE seconds).
    backends_cpu = sum(
        cpu_seconds(pid) - backends_before.get(pid, 0.0) for pid in backend_pids(db_url)
    )
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    run = parse_wrk(name, output)
    per_request = 1000 / max(run.requests, 1)
    run.cpu_ms = {
        "gunicorn": workers_cpu * per_request,
        "postgres": backends_cpu * per_request,
        "wrk": client_cpu * per_request,
    }
    return run


def create_share(django_dir: Path, env: dict[str, str], tmp: Path) -> str:
    sample = tmp / "quarterly report.pdf"
    sample.write_bytes(os.urandom(200_000))
    completed = subprocess.run(
        [PYTHON, "manage.py", "create_share", str(sample), "--max-downloads", "5"],
        cwd=django_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return re.search(r"Share link:\s+\S*(/s/[A-Za-z0-9_-]+)", completed.stdout).group(1)


def fmt_runs(runs: list[Run]) -> str:
    return ", ".join(f"{run.rate:.0f}" for run in runs)


def report(results: dict[str, list[Run]], setup: str) -> str:
    health, landing = results["health"], results["landing"]
    ratios = [page.rate / base.rate for page, base in zip(landing, health, strict=True)]
    median_ratio = statistics.median(run.rate for run in landing) / statistics.median(
        run.rate for run in health
    )
    lines = [
        setup,
        "",
        "| page | median req/s | runs (req/s) | median p50 / p99 latency (ms) "
        "| CPU ms per request: gunicorn / PostgreSQL / wrk | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for label, runs in (("GET /health/", health), ("GET /s/<token>", landing)):

        def median(key: str, runs: list[Run] = runs) -> float:
            return statistics.median(run.cpu_ms[key] for run in runs)

        p50 = statistics.median(run.latency_ms.get("p50", 0) for run in runs)
        p99 = statistics.median(run.latency_ms.get("p99", 0) for run in runs)
        lines.append(
            f"| {label} | {statistics.median(run.rate for run in runs):.0f} | {fmt_runs(runs)} "
            f"| {p50:.1f} / {p99:.1f} "
            f"| {median('gunicorn'):.2f} / {median('postgres'):.2f} / {median('wrk'):.2f} "
            f"| {sum(run.non_2xx for run in runs)} |"
        )
    lines += [
        "",
        f"Landing / health: {median_ratio:.2f} (ratio of the medians); per round: "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios),
    ]
    errors = {run.socket_errors for runs in results.values() for run in runs} - {""}
    if errors:
        lines.append(f"Socket errors: {'; '.join(sorted(errors))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds per URL and round")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--client-threads", type=int, default=2, help="wrk's -t")
    parser.add_argument("--workers", type=int, help="default: the Procfile's")
    parser.add_argument("--threads", type=int, help="default: the Procfile's")
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432/")
    parser.add_argument("--database", default="ots_bench_landing", help="dropped and recreated")
    parser.add_argument("--ref", default=None, help="benchmark this commit (git archive)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args(argv)
    workers, threads = procfile_gunicorn(args.ref)
    args.workers = args.workers or workers
    args.threads = args.threads or threads
    if not shutil.which(args.wrk):
        print("FAILED: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    print("command:", shlex.join([PYTHON, *sys.argv]), flush=True)
    load_avg = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load_avg}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ots-bench-landing-"))
    db_url = database_url(args.server_url, args.database)
    try:
        django_dir, entrypoint, code = served_tree(args.ref, tmp)
        recreate_database(args.server_url, args.database)
        (tmp / "media").mkdir()
        env = loopback_server_env(
            tmp, DATABASE_URL=db_url, MEDIA_ROOT=str(tmp / "media"), CELERY_BROKER_URL="memory://"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = gunicorn(port, workers=args.workers, threads=args.threads)
        command[0] = str(entrypoint)  # the copy's, which serves the copy
        print("server:", shlex.join(command), flush=True)
        with running(tmp) as processes:
            server = processes.start("gunicorn", command, env=env, cwd=django_dir)
            processes.wait_until(
                f"gunicorn to answer /health/ with its {args.workers} worker(s)",
                lambda: (
                    answers(f"{base}/health/", timeout=2) and len(server.children()) == args.workers
                ),
                START_TIMEOUT,
            )
            landing_url = base + create_share(django_dir, env, tmp)
            if not answers(landing_url):
                raise RuntimeError(f"the landing page did not answer 200:\n{processes.tails()}")
            urls = {"health": f"{base}/health/", "landing": landing_url}
            for url in urls.values():
                load(args.wrk, url, WARM_UP_SECONDS, args)
            opened_before = opened_events(db_url)
            results: dict[str, list[Run]] = {name: [] for name in urls}
            for round_number in range(args.rounds):
                order = list(urls) if round_number % 2 == 0 else list(reversed(urls))
                for name in order:
                    run = measured(name, args.wrk, urls[name], server.children(), db_url, args)
                    results[name].append(run)
                    print(
                        f"round {round_number + 1} {name}: {run.rate:.0f} req/s, "
                        f"p99 {run.latency_ms.get('p99', 0):.1f} ms",
                        flush=True,
                    )
                    time.sleep(1)  # let the last connections close before the next URL
            opened = opened_events(db_url) - opened_before
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        try:
            recreate_database(args.server_url, args.database, create=False)
        except psycopg.Error as exc:
            print(f"could not drop {args.database}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)

    landing_requests = sum(run.requests for run in results["landing"])
    non_2xx = sum(run.non_2xx for run in results["landing"])
    setup = (
        f"Code: {code}. gunicorn: {args.workers} workers x {args.threads} threads (gthread), "
        f"through scripts/entrypoint.sh; wrk: -t{args.client_threads} "
        f"-c{args.connections}, {args.rounds} rounds of {args.duration} s per page. "
        f"{opened:,} 'opened' events written for {landing_requests:,} landing requests "
        "counted by wrk."
    )
    print(report(results, setup))
    if non_2xx or opened < landing_requests:
        print(
            f"FAILED: {non_2xx} landing responses were not 200, or events are missing "
            f"({opened} for {landing_requests} requests)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
