"""An upload survives its server: gunicorn killed with SIGKILL halfway, started again, and
tuspy resumes where the database and the staging file say.

Through the harness (tests/support): gunicorn through scripts/entrypoint.sh, as production
starts it, with its own SQLite database and MEDIA_ROOT; the two runs share both.
"""

import hashlib
import json
import os
import secrets
import signal
import socket
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from tusclient.client import TusClient

from apps.uploads import services
from tests.support.app_server import AppServer, start_app_server
from tests.support.processes import Processes, wait_until

MIB = 1024**2
SIZE = 6 * MIB + 12345
CHUNK = MIB
DEADLINE = 30.0  # seconds


@pytest.fixture
def a_file(tmp_path: Path) -> tuple[Path, bytes]:
    content = secrets.token_bytes(SIZE)
    path = tmp_path / "holiday-video.mp4"
    path.write_bytes(content)
    return path, content


def kill(server: AppServer) -> None:
    """The whole server dies at once (the container is killed): arbiter and workers."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.popen.wait(timeout=DEADLINE)


def staging_file(server: AppServer) -> Path:
    [staged] = (server.media_root / "uploads-staging").iterdir()
    return staged


def resume(server: AppServer, upload_url: str, path: Path):
    """A tuspy uploader for the upload at `upload_url`, now served by `server` (its port
    changed with the restart), at the offset the server reports."""
    url = server.url + urlsplit(upload_url).path
    return TusClient(f"{server.url}/api/v1/uploads/").uploader(str(path), url=url, chunk_size=CHUNK)


def lease_lapsed(database: Path) -> bool:
    with closing(sqlite3.connect(database)) as connection:
        [(lease_until,)] = connection.execute("SELECT lease_until FROM uploads_upload").fetchall()
    if lease_until is None:
        return True
    return datetime.fromisoformat(lease_until).replace(tzinfo=UTC) <= datetime.now(UTC)


def download(server: AppServer, share_object: dict) -> bytes:
    response = requests.post(
        f"{server.url}/api/v1/shares/{share_object['token']}/download",
        data={"password": "pw"},
        timeout=60,
    )
    assert response.status_code == 200, response.content
    return response.content


def test_tuspy_resumes_after_the_server_is_killed_and_started_again(tmp_path, a_file):
    path, content = a_file
    root = tmp_path / "server"
    root.mkdir()
    with Processes(root) as first_run:
        server = start_app_server(first_run, root)
        uploader = TusClient(f"{server.url}/api/v1/uploads/").uploader(
            str(path),
            chunk_size=CHUNK,
            metadata={"filename": path.name, "password": "pw"},
        )
        uploader.upload(stop_at=3 * MIB)
        kill(server)

    with Processes(root) as second_run:
        server = start_app_server(second_run, root)
        resumed = resume(server, uploader.url, path)
        assert resumed.offset == 3 * MIB
        resumed.upload()

        share_object = json.loads(resumed.request.response_content)
        assert share_object["sha256"] == hashlib.sha256(content).hexdigest()
        assert share_object["name"] == path.name
        assert download(server, share_object) == content


def test_bytes_a_killed_patch_had_not_recorded_are_dropped_and_sent_again(tmp_path, a_file):
    path, content = a_file
    root = tmp_path / "server"
    root.mkdir()
    with Processes(root) as first_run:
        server = start_app_server(first_run, root)
        uploader = TusClient(f"{server.url}/api/v1/uploads/").uploader(
            str(path), chunk_size=CHUNK, metadata={"password": "pw"}
        )
        uploader.upload(stop_at=MIB)
        # A PATCH for the rest, killed with its server once part of it is on disk (written,
        # not yet recorded: that happens every few seconds, or at the end).
        with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as raw:
            head = (
                f"PATCH {urlsplit(uploader.url).path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Upload-Offset: {MIB}\r\nContent-Length: {SIZE - MIB}\r\n\r\n"
            )
            raw.sendall(head.encode() + content[MIB : 3 * MIB])
            wait_until(
                "the server to write part of the PATCH",
                lambda: staging_file(server).stat().st_size > MIB,
                DEADLINE,
                processes=[server.process],
            )
            kill(server)

    with Processes(root) as second_run:
        server = start_app_server(second_run, root)
        resumed = resume(server, uploader.url, path)
        # What was recorded: the first MiB, and what the killed PATCH recorded, if it got
        # to its first checkpoint; never the bytes it wrote after that.
        assert MIB <= resumed.offset <= 3 * MIB
        # The killed request's lease holds the upload until it runs out (409 meanwhile):
        # wait for that in the server's own database.
        wait_until(
            "the killed request's lease to run out",
            lambda: lease_lapsed(root / "db.sqlite3"),
            services.LEASE_SECONDS + DEADLINE,
            processes=[server.process],
        )
        resumed.upload()

        share_object = json.loads(resumed.request.response_content)
        assert share_object["sha256"] == hashlib.sha256(content).hexdigest()
        assert download(server, share_object) == content
