"""The app under benchmark: which code, its environment, gunicorn and nginx on loopback.

The processes are started, awaited and stopped by the harness the tests use,
django_backend/tests/support/processes.py (gunicorn, and nginx with the repository's
templates through deploy/nginx/nginx_standalone.py). This module puts django_backend and
deploy/nginx on sys.path for that, as pytest's `pythonpath` does for the tests; the harness
imports neither Django nor pytest. With ``--ref`` the served code is exported from that
commit, while the harness and the templates' renderer are the working tree's.

gunicorn serves the exported or working-tree django_backend on a free port of 127.0.0.1,
with the environment of every app process the tests start (built from .env.sample's
defaults, never from this shell's), plus the benchmark's own settings (see server_env).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
for _path in (REPO_DIR / "deploy" / "nginx", REPO_DIR / "django_backend"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.support.env import loopback_server_env  # noqa: E402
from tests.support.processes import (  # noqa: E402
    Process,
    Processes,
    answers,
    free_port,
    gunicorn,
    listening,
    tails,
)

DJANGO_DIR = REPO_DIR / "django_backend"
TEMPLATES_DIR = REPO_DIR / "deploy" / "nginx"
MAIN_TEMPLATE = "onetimeshare.conf.template"
BENCH_TEMPLATE = "bench.conf.template"
PYTHON = sys.executable

MIB = 1024 * 1024
START_TIMEOUT = 30  # seconds for gunicorn to answer with all its workers
NGINX_START_TIMEOUT = 15
STOP_TIMEOUT = 30  # seconds between SIGTERM and SIGKILL


@dataclass
class Server:
    """A gunicorn of the benchmark: its master process and its base URL."""

    process: Process
    base_url: str

    @property
    def name(self) -> str:
        return self.process.name

    def workers(self) -> list[int]:
        return self.process.children()

    def log_tail(self, lines: int = 30) -> str:
        return self.process.tail(lines)


def running(tmp: Path) -> Processes:
    """The processes of one run, logging into `tmp`; stopped on leaving the `with` block."""
    return Processes(tmp, stop_timeout=STOP_TIMEOUT)


def server_env(tmp: Path, size: int, *, offload: bool = False) -> dict[str, str]:
    """The app's environment: everything in `tmp`, plain HTTP, no throttling.

    With `offload`, the app sits behind nginx: it answers downloads with X-Accel-Redirect
    (DOWNLOAD_OFFLOAD=nginx) and takes the client's address from nginx's X-Real-IP.
    """
    return loopback_server_env(
        tmp,
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        FILE_UPLOAD_TEMP_DIR=str(tmp / "spool"),
        MAX_UPLOAD_SIZE=str(max(size, MIB) + MIB),
        STORAGE_BACKEND="local",
        # Repeated runs from one address must not be throttled.
        RATE_LIMIT_UPLOADS="100000/h",
        RATE_LIMIT_DOWNLOADS="100000/h",
        # No Celery worker runs in the benchmark. The purge task that a last download
        # enqueues goes to an in-process broker and is dropped with the process, instead of
        # being queued under the repository's var/celery/ for a later worker.
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
        **(
            {
                "DOWNLOAD_OFFLOAD": "nginx",
                "DOWNLOAD_OFFLOAD_LOCATION": "/_protected/",
                "CLIENT_IP_HEADER": "HTTP_X_REAL_IP",
            }
            if offload
            else {"DOWNLOAD_OFFLOAD": "off", "CLIENT_IP_HEADER": "REMOTE_ADDR"}
        ),
    )


def prepare_site(tmp: Path, django_dir: Path, env: dict[str, str]) -> None:
    """The media and spool folders and the database, migrated."""
    (tmp / "media").mkdir(exist_ok=True)
    (tmp / "spool").mkdir(exist_ok=True)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=django_dir,
        env=env,
        check=True,
        timeout=120,
    )


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO_DIR), *args], check=True, capture_output=True, timeout=60
    ).stdout.decode()


def checkout(tmp: Path, ref: str | None) -> tuple[Path, Path, str]:
    """The django_backend to serve, the nginx templates, and a description of them.

    Without `ref`, the working tree as it is. With `ref`, that commit's django_backend and
    deploy/nginx, exported with `git archive` into the temporary directory, so that edits
    in progress in the working tree cannot change or break the measurement.
    """
    if ref is None:
        try:
            head = git("rev-parse", "--short", "HEAD").strip()
            dirty = git("status", "--porcelain", "--", "django_backend", "deploy").strip()
        except (OSError, subprocess.SubprocessError):
            return DJANGO_DIR, TEMPLATES_DIR, f"working tree {REPO_DIR}"
        state = " with uncommitted changes" if dirty else ""
        return DJANGO_DIR, TEMPLATES_DIR, f"working tree at {head}{state}"
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    paths = ["django_backend"]
    if git("ls-tree", "--name-only", sha, "deploy/nginx").strip():
        paths.append("deploy/nginx")
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", sha, *paths],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    src = tmp / "src"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    description = f"{ref} = {sha[:12]} (exported with git archive)"
    return src / "django_backend", src / "deploy" / "nginx", description


def prepare_code(tmp: Path, ref: str | None, env: dict[str, str]) -> tuple[Path, Path]:
    """The django_backend and nginx templates to serve (see checkout), the site migrated."""
    django_dir, templates, source = checkout(tmp, ref)
    print("code:", source, flush=True)
    prepare_site(tmp, django_dir, env)
    return django_dir, templates


def start_server(
    processes: Processes,
    django_dir: Path,
    env: dict[str, str],
    args: argparse.Namespace,
    *,
    sendfile: bool | None = None,
    name: str = "gunicorn",
) -> Server:
    """gunicorn on a free port of 127.0.0.1, answering /health/ with all its workers up.

    `sendfile` None follows --no-sendfile; `name` names it and its log.
    """
    if sendfile is None:
        sendfile = not args.no_sendfile
    port = free_port()
    options = ["--chdir", str(django_dir), "--timeout", str(args.worker_timeout)]
    if not sendfile:
        options.append("--no-sendfile")
    command = gunicorn(
        port, workers=args.workers, threads=args.threads, options=options, entrypoint=False
    )
    server = Server(
        processes.start(name, command, env=env, cwd=django_dir), f"http://127.0.0.1:{port}"
    )
    processes.wait_until(
        f"{name} to answer /health/ with its {args.workers} worker(s)",
        lambda: (
            answers(f"{server.base_url}/health/", timeout=2)
            and len(server.workers()) == args.workers
        ),
        START_TIMEOUT,
    )
    return server


def start_front(
    processes: Processes,
    tmp: Path,
    templates: Path,
    *,
    upstream: Server | None,
    max_body: int,
    bench_root: Path | None = None,
) -> tuple[Process, str | None, str | None]:
    """nginx on loopback: the app's template in front of `upstream` and, with `bench_root`,
    the bench template serving that folder as plain static files under /_bench/.

    Returns nginx and the base URLs of the two servers (None for one not asked for).
    """
    needed = [MAIN_TEMPLATE] * (upstream is not None) + [BENCH_TEMPLATE] * (bench_root is not None)
    for name in needed:
        if not (templates / name).is_file():
            raise RuntimeError(f"no {templates / name} (a --ref from before deploy/nginx?)")
    sites: list[tuple[Path, dict[str, str]]] = []
    ports = []
    app_url = bench_url = None
    if upstream is not None:
        port = free_port()
        sites.append(
            (
                templates / MAIN_TEMPLATE,
                {
                    "NGINX_LISTEN": f"127.0.0.1:{port}",
                    "UPSTREAM": upstream.base_url.removeprefix("http://"),
                    # Django's STATIC_ROOT (var/static, fixed in settings); the benchmark
                    # fetches no static file, so it need not exist.
                    "STATIC_ROOT": str(REPO_DIR / "var" / "static"),
                    "MEDIA_ROOT": str(tmp / "media"),
                    # MAX_UPLOAD_SIZE plus 1 MiB, as the template asks; nginx takes bytes.
                    "CLIENT_MAX_BODY_SIZE": str(max_body + MIB),
                    "REAL_IP_FROM": "127.0.0.1",
                },
            )
        )
        ports.append(port)
        app_url = f"http://127.0.0.1:{port}"
    if bench_root is not None:
        port = free_port()
        sites.append(
            (
                templates / BENCH_TEMPLATE,
                {"BENCH_LISTEN": f"127.0.0.1:{port}", "BENCH_ROOT": str(bench_root)},
            )
        )
        ports.append(port)
        bench_url = f"http://127.0.0.1:{port}/_bench"
    # As the official image: one worker per core.
    nginx = processes.nginx(tmp / "nginx", sites, worker_processes="auto")
    processes.wait_until(
        f"nginx to listen on {ports} with its workers",
        lambda: all(listening(port) for port in ports) and nginx.children(),
        NGINX_START_TIMEOUT,
    )
    return nginx, app_url, bench_url


def both_logs(server: Server, nginx: Process) -> str:
    return tails([server.process, nginx], 30)
