"""Start app processes on loopback, wait for them with a deadline, stop them by process group.

The one harness behind the browser tests (tests_e2e: gunicorn), the production topology test
(tests_production: nginx, two gunicorns, Celery worker and beat, moto's S3 server) and the
benchmark (bench/: gunicorns and nginx):

- `Processes` starts each process in a session of its own (so that its whole group, gunicorn's
  or nginx's workers included, can be signalled), with its output in a log file of its name,
  and stops them all on the way out of its `with` block: SIGTERM to every group, then SIGKILL
  to whatever is left after the timeout;
- `wait_until(what, check, timeout)` is the one poller: a condition polled against a deadline,
  never a fixed sleep; it gives up early when a process it waits on has exited, and fails
  naming `what`, with the last lines of the processes' logs;
- `gunicorn()`, `celery_worker()`, `celery_beat()` and `Processes.nginx()` build the
  commands as production runs them (through scripts/entrypoint.sh, and nginx with the
  repository's templates through deploy/nginx/nginx_standalone.py);
- the environment those processes get is `env.loopback_server_env()`: built from
  .env.sample's defaults, never from the caller's environment.

Why here: the tests' import root is django_backend (pytest's `pythonpath`), and bench/ puts
django_backend and deploy/nginx on sys.path the same way, so one module serves both without
being installed. It imports neither Django nor pytest, so the benchmark configures neither;
a failure is a `ProcessError` (a RuntimeError), which pytest reports as a failure and the
benchmark as FAILED.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypeVar

from nginx_standalone import nginx_binary, write_config

from .env import DJANGO_DIR, REPO_DIR, VENV_BIN

ENTRYPOINT = REPO_DIR / "scripts" / "entrypoint.sh"
# Worker and beat leave the schema and the static files to the web processes, as in
# docker-compose.yml.
BACKGROUND_ENV = {"SKIP_MIGRATIONS": "1", "SKIP_COLLECTSTATIC": "1"}
POLL_INTERVAL = 0.1  # seconds between two checks: the deadline decides, not this

T = TypeVar("T")

# Readiness probes talk to loopback directly, whatever proxy the environment names.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProcessError(RuntimeError):
    """A process exited early, or what was waited for did not happen by its deadline."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's or nginx's workers); [] once it is gone."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.extend(int(p) for p in (task / "children").read_text().split())
    return sorted(children)


@dataclass
class Process:
    name: str
    command: list[str]
    popen: subprocess.Popen
    log: Path  # its standard output and error; for nginx, the access log
    error_log: Path | None = None  # nginx writes its errors to a file of their own

    @property
    def pid(self) -> int:
        return self.popen.pid

    def children(self) -> list[int]:
        return child_pids(self.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        """The last lines of its log(s), each headed by the process's name and the path."""
        parts = []
        for path in (self.log, self.error_log):
            if path is None:
                continue
            text = path.read_text(errors="replace") if path.exists() else ""
            last = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- {self.name} ({path}) ---\n{last}")
        return "\n".join(parts)


def tails(processes: Iterable[Process], lines: int = 40) -> str:
    return "\n".join(process.tail(lines) for process in processes)


def wait_until(
    what: str,
    check: Callable[[], T],
    timeout: float = 10.0,
    *,
    processes: Sequence[Process] = (),
) -> T:
    """Poll `check` until it returns something truthy, and return that.

    A check that raises OSError (nothing listens yet; requests' errors are OSErrors too)
    has simply not held yet. Raises ProcessError naming `what` at the deadline (with the
    last such error), or as soon as one of `processes` exits, with their logs' last lines.
    """
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while True:
        for process in processes:
            if process.popen.poll() is not None:
                raise ProcessError(
                    f"{process.name} exited with {process.popen.returncode} while waiting "
                    f"for {what}:\n{tails(processes)}"
                )
        try:
            result = check()
        except OSError as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            logs = f"\n{tails(processes)}" if processes else ""
            raise ProcessError(f"timed out after {timeout} s waiting for {what}{detail}{logs}")
        time.sleep(POLL_INTERVAL)


def answers(url: str, status: int = 200, *, timeout: float = 5.0) -> bool:
    """Whether a GET of `url` is answered with `status`; OSError while nothing listens."""
    try:
        with _direct.open(url, timeout=timeout) as response:
            return response.status == status
    except urllib.error.HTTPError as error:
        return error.code == status


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def access_log_entries(log: Path) -> list[dict[str, str]]:
    """nginx's access log, written by the repository's templates as key=value fields: one
    dict per request ([] while there is no log)."""
    with contextlib.suppress(FileNotFoundError):
        return [
            dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            for line in log.read_text(errors="replace").splitlines()
        ]
    return []


def stop(processes: Iterable[Process], timeout: float = 10.0) -> None:
    """SIGTERM to every process group at once, then SIGKILL to whatever is left of them."""
    processes = list(processes)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    # A leader that ignored SIGTERM, or a worker that outlived its leader.
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=timeout)


class Processes:
    """The processes of one fixture or benchmark run, with their logs in `log_dir`.

    As a context manager it stops every process it started on the way out, whatever
    happened; `stop_timeout` is how long a process group gets between SIGTERM and SIGKILL.
    """

    def __init__(self, log_dir: Path, *, stop_timeout: float = 10.0) -> None:
        self.log_dir = log_dir
        self.stop_timeout = stop_timeout
        self.started: list[Process] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        cwd: Path = DJANGO_DIR,
        log: Path | None = None,
        error_log: Path | None = None,
    ) -> Process:
        """Start `command` in a session of its own; its output goes to `log` (by default
        `name`.log in log_dir). `env` None is this process's environment."""
        log = log or self.log_dir / f"{name}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, list(command), popen, log, error_log)
        self.started.append(process)
        return process

    def nginx(
        self,
        directory: Path,
        sites: list[tuple[Path, dict[str, str]]],
        *,
        name: str = "nginx",
        env: Mapping[str, str] | None = None,
        worker_processes: str = "2",
    ) -> Process:
        """nginx in the foreground with each (template, values) of `sites` rendered into
        `directory`, which also holds its pid file and temporary folders. The templates log
        requests to /dev/stdout, as in the container: here `name`-access.log in log_dir;
        errors go to `name`-error.log."""
        binary = nginx_binary()
        if binary is None:
            raise ProcessError("nginx is not installed (not on PATH, not /usr/sbin/nginx)")
        error_log = self.log_dir / f"{name}-error.log"
        config = write_config(
            directory, sites, error_log=error_log, worker_processes=worker_processes
        )
        command = [binary, "-p", str(directory), "-c", str(config), "-e", str(error_log)]
        access_log = self.log_dir / f"{name}-access.log"
        return self.start(name, command, env=env, log=access_log, error_log=error_log)

    def wait_until(self, what: str, check: Callable[[], T], timeout: float = 10.0) -> T:
        """`wait_until`, giving up as soon as any process of this run has exited."""
        return wait_until(what, check, timeout, processes=self.started)

    def tails(self, lines: int = 40) -> str:
        return tails(self.started, lines)

    def stop(self) -> None:
        stop(self.started, self.stop_timeout)


def gunicorn(
    port: int,
    *,
    workers: int = 2,
    threads: int = 8,
    options: Sequence[str] = (),
    entrypoint: bool = True,
) -> list[str]:
    """gunicorn serving core.wsgi on 127.0.0.1:`port`: sync workers when `threads` is 1,
    else gthread. Through scripts/entrypoint.sh (wait for the database, migrate,
    collectstatic, then gunicorn, as the image starts it), or with `entrypoint` False the
    virtualenv's gunicorn alone, for a caller that has migrated already."""
    command = [
        *("gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{port}"),
        *("--worker-class", "sync" if threads == 1 else "gthread"),
        *("--workers", str(workers), "--threads", str(threads)),
        *options,
    ]
    if entrypoint:
        return [str(ENTRYPOINT), *command]
    return [str(VENV_BIN / "gunicorn"), *command[1:]]


def celery_worker() -> list[str]:
    """A Celery worker through the entrypoint (give it BACKGROUND_ENV), one task at a time."""
    worker = ["worker", "--pool", "solo", "--loglevel", "INFO"]
    worker += ["--without-gossip", "--without-mingle"]
    return [str(ENTRYPOINT), "celery", "-A", "core", *worker]


def celery_beat(schedule: Path) -> list[str]:
    """Celery beat through the entrypoint (give it BACKGROUND_ENV), its schedule file at
    `schedule`; remote control on, so that `celery inspect ping` reaches it."""
    beat = ["beat", "--loglevel", "INFO", "--enable-remote-control", "-s", str(schedule)]
    return [str(ENTRYPOINT), "celery", "-A", "core", *beat]


def moto_server(port: int) -> list[str]:
    """moto's S3 API server on 127.0.0.1:`port` (GET / answers without a signature)."""
    return [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
