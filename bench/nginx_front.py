"""nginx for the transfer benchmark, on loopback, without Docker.

The repository's templates (deploy/nginx/*.template) are rendered as the official nginx
image renders them (each ``${NAME}`` replaced, nothing else touched) and included in the
``http`` block of a small main configuration whose pid file, logs and temporary folders all
lie in one directory of the benchmark's temporary directory. nginx is started in the
foreground (``daemon off``) with ``-p <that directory>``, in a session of its own, so it
touches no system state and its whole process group can be stopped.

This follows django_backend/tests_production/support.py, which the test suite uses for
the same purpose; the benchmark does not import test modules, so the few lines are here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
START_TIMEOUT = 15
STOP_TIMEOUT = 10


def nginx_binary() -> str:
    found = shutil.which("nginx")
    if found:
        return found
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    raise RuntimeError("nginx is not installed (not on PATH, not /usr/sbin/nginx)")


def render(template: Path, values: dict[str, str]) -> str:
    """The template with each ${NAME} replaced; every placeholder must have a value."""
    text = template.read_text()
    missing = set(PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise RuntimeError(f"{template.name} needs values for {sorted(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def main_config(directory: Path, included: list[Path], error_log: Path) -> str:
    """An nginx.conf that includes `included` in its http block; all state in `directory`."""
    # The stored files are 0600 (FILE_UPLOAD_PERMISSIONS), owned by whoever runs the app.
    # In Docker, nginx's workers and the app share a uid; here, when the master runs as
    # root, its workers must keep root's uid to read them.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = {
        name: directory / f"temp-{name}" for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    includes = "".join(f"    include {path};\n" for path in included)
    return (
        f"{user}"
        "daemon off;\n"
        # As the official image: one worker per core.
        "worker_processes auto;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {error_log} notice;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    default_type application/octet-stream;\n"
        f"    client_body_temp_path {temp['body']};\n"
        f"    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n"
        f"    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n"
        f"{includes}"
        "}\n"
    )


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
    directory.mkdir(parents=True, exist_ok=True)
    included = []
    for template, values in sites:
        path = directory / template.name.removesuffix(".template")
        path.write_text(render(template, values))
        included.append(path)
    error_log = directory / "error.log"
    access_log = directory / "access.log"
    config = directory / "nginx.conf"
    config.write_text(main_config(directory, included, error_log))
    command = [nginx_binary(), "-p", str(directory), "-c", str(config), "-e", str(error_log)]
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
