"""An app server for tests whose subject is what the WSGI server does: gunicorn through
scripts/entrypoint.sh, with its own SQLite database and folders, and raw HTTP to it.

What a WSGI server decodes (a chunked body) and what a killed worker leaves behind (a
spooled upload) cannot be seen through Django's test client. Imports neither Django nor
pytest.
"""

import os
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.env import DJANGO_DIR, VENV_BIN, loopback_server_env
from tests.support.processes import Process, Processes, answers, free_port, gunicorn

SERVER_START_DEADLINE = 60.0  # seconds: migrate a fresh SQLite database, boot


@dataclass
class AppServer:
    """gunicorn (one gthread worker) through scripts/entrypoint.sh, as production starts it,
    with its own SQLite database, MEDIA_ROOT and upload spool directory."""

    port: int
    root: Path
    media_root: Path
    spool_dir: Path
    env: dict[str, str]
    process: Process
    processes: Processes

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return self.process.children()

    def spooled_files(self) -> set[Path]:
        return set(self.spool_dir.glob("*")) if self.spool_dir.exists() else set()

    def stored_files(self) -> set[Path]:
        shares = self.media_root / "shares"
        return {path for path in shares.rglob("*") if path.is_file()} if shares.exists() else set()

    def log_text(self) -> str:
        return self.process.log_text()

    def manage(self, *arguments: str) -> subprocess.CompletedProcess:
        """`manage.py` with the server's settings (its database and folders), as an operator
        or a cron job would run it beside the server."""
        return subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *arguments],
            cwd=DJANGO_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


def start_app_server(
    processes: Processes, root: Path, *, gunicorn_options: Sequence[str] = (), **settings: str
) -> AppServer:
    media_root = root / "media"
    port = free_port()
    env = loopback_server_env(
        root,
        DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
        MEDIA_ROOT=str(media_root),
        # No worker runs here: tasks go to an in-process broker.
        CELERY_BROKER_URL="memory://localhost/",
        RATE_LIMIT_UPLOADS="1000/h",
        RATE_LIMIT_DOWNLOADS="1000/h",
        # API requests only: the repository's shared static folder stays untouched.
        SKIP_COLLECTSTATIC="1",
        LOG_LEVEL="WARNING",
        **settings,
    )
    spool_dir = Path(env["FILE_UPLOAD_TEMP_DIR"] or media_root / ".uploads")
    command = gunicorn(
        port,
        workers=1,
        options=["--graceful-timeout", "2", "--no-control-socket", *gunicorn_options],
    )
    process = processes.start(f"server-{port}", command, env=env)
    processes.wait_until(
        "the server to answer /health/",
        lambda: answers(f"http://127.0.0.1:{port}/health/"),
        SERVER_START_DEADLINE,
    )
    return AppServer(port, root, media_root, spool_dir, env, process, processes)


def raw_request(server: AppServer, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body` exactly as
    given, close the sending side, and return the status and body of the answer."""
    with server.connect() as connection:
        connection.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), content


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
