"""nginx for the transfer benchmark, on loopback, without Docker.

The repository's templates (deploy/nginx/*.template) are rendered as the official nginx
image renders them (each ``${NAME}`` replaced, nothing else touched) and included in the
``http`` block of a small main configuration whose pid file, logs and temporary folders all
lie in one directory of the benchmark's temporary directory. nginx is started in the
foreground (``daemon off``) with ``-p <that directory>``, in a session of its own, so it
touches no system state and its whole process group can be stopped.

Rendering and the main configuration come from deploy/nginx/nginx_standalone.py, which
the production tests use as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "nginx"))
from nginx_standalone import nginx_binary, write_config

START_TIMEOUT = 15
STOP_TIMEOUT = 10


@dataclass
class Nginx:
    process: subprocess.Popen
    command: list[str]
    config: Path
    access_log: Path
    error_log: Path

    def workers(self) -> list[int]:
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                children.extend(int(p) for p in (task / "children").read_text().split())
        return sorted(children)

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.error_log, self.access_log):
            with contextlib.suppress(OSError):
                text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)


def start_nginx(
    directory: Path, sites: list[tuple[Path, dict[str, str]]], ports: list[int]
) -> Nginx:
    """Render each (template, values) into `directory`, start nginx, wait for `ports`.

    The templates log requests to /dev/stdout, as in the container: here nginx's standard
    output is `access.log` in `directory`.
    """
    error_log = directory / "error.log"
    access_log = directory / "access.log"
    # As the official image: one worker per core.
    config = write_config(directory, sites, error_log=error_log, worker_processes="auto")
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (not on PATH, not /usr/sbin/nginx)")
    command = [binary, "-p", str(directory), "-c", str(config), "-e", str(error_log)]
    with access_log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    nginx = Nginx(process, command, config, access_log, error_log)
    try:
        wait_listening(nginx, ports)
    except BaseException:
        stop_nginx(nginx)
        raise
    return nginx


def wait_listening(nginx: Nginx, ports: list[int]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(ports)
    while time.monotonic() < deadline:
        status = nginx.process.poll()
        if status is not None:
            raise RuntimeError(f"nginx exited with {status}:\n{nginx.log_tail()}")
        for port in list(pending):
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1),
            ):
                pending.remove(port)
        if not pending and nginx.workers():
            return
        time.sleep(0.1)
    raise RuntimeError(f"nginx did not listen on {pending} within {START_TIMEOUT} s")


def stop_nginx(nginx: Nginx) -> None:
    """SIGTERM to nginx's process group (a fast shutdown), then SIGKILL to what is left."""
    pid = nginx.process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        nginx.process.wait(timeout=STOP_TIMEOUT)
    # A master that ignored SIGTERM, or a worker that outlived its master.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        nginx.process.wait(timeout=STOP_TIMEOUT)
