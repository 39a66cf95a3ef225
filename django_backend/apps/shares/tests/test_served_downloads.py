"""How a download ended, as the real server reports it: through gunicorn (gthread, as `make
run` and production serve), on its sendfile path and with sendfile off.

The download's end is learned when the server closes the response's file; gunicorn's
sendfile path rewinds the file after sending it, which the in-process test client never
does. So these tests run gunicorn and read the timeline from the server's own database.
"""

import hashlib
import http.client
import json
import secrets
import socket
import sqlite3
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.app_server import AppServer, start_app_server
from tests.support.processes import Processes

SIZE = 8 * 1024 * 1024
# Far more than the kernel buffers between server and client (a few MiB on loopback), so a
# download cut off after its first bytes is cut off for the server too.
LARGE = 64 * 1024 * 1024


@pytest.fixture(scope="module", params=["sendfile", "no-sendfile"])
def served(request, tmp_path_factory) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp(f"served-{request.param}")
    options = ["--no-sendfile"] if request.param == "no-sendfile" else []
    with Processes(root) as processes:
        yield start_app_server(processes, root, gunicorn_options=options)


def upload(served: AppServer, payload: bytes) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("PUT", "/api/v1/shares/payload.bin", body=payload)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 201, body
    return json.loads(body)


def timeline(served: AppServer, share_token: str) -> list[str]:
    token_hash = hashlib.sha256(share_token.encode()).hexdigest()
    with sqlite3.connect(served.root / "db.sqlite3") as database:
        rows = database.execute(
            "SELECT e.kind FROM shares_shareevent e JOIN shares_share s ON s.id = e.share_id "
            "WHERE s.share_token_hash = ? ORDER BY e.at, e.id",
            (token_hash,),
        )
        return [kind for (kind,) in rows]


def test_a_download_that_delivers_every_byte_is_recorded_as_completed(served):
    payload = secrets.token_bytes(SIZE)
    share = upload(served, payload)
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request("POST", f"/api/v1/shares/{share['token']}/download")
    response = connection.getresponse()
    received = response.read()
    connection.close()

    assert response.status == 200
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()
    served.processes.wait_until(
        "the download's end in the timeline",
        lambda: "download_completed" in timeline(served, share["token"]),
    )
    assert "download_broken_off" not in timeline(served, share["token"])


def test_a_download_cut_off_midway_is_recorded_as_broken_off(served):
    share = upload(served, secrets.token_bytes(LARGE))
    request = (
        f"POST /api/v1/shares/{share['token']}/download HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    with socket.socket() as client:
        # A tiny receive window (set before connecting, so it is the one offered), so the
        # server cannot push the whole file into the kernel's buffers.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(30)
        client.connect(("127.0.0.1", served.port))
        client.sendall(request.encode())
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        # Close with unread data: the kernel answers the server with a reset.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    served.processes.wait_until(
        "the download's end in the timeline",
        lambda: "download_broken_off" in timeline(served, share["token"]),
        timeout=30,
    )
    assert "download_completed" not in timeline(served, share["token"]), timeline(
        served, share["token"]
    )


def test_curl_resumes_a_download_cut_off_midway_within_its_session(served, tmp_path):
    payload = secrets.token_bytes(LARGE)
    share = upload(served, payload)
    request = (
        f"POST /api/v1/shares/{share['token']}/download HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{served.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    received = b""
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.settimeout(30)
        client.connect(("127.0.0.1", served.port))
        client.sendall(request.encode())
        while len(received) < 1024 * 1024:
            received += client.recv(65536)
        # The connection drops: a reset with most of the file unsent.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    head, _, body_start = received.partition(b"\r\n\r\n")
    headers = dict(
        line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
    )
    partial = tmp_path / "payload.bin"
    partial.write_bytes(body_start)

    resumed = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--continue-at",
            "-",
            "--output",
            str(partial),
            headers["Content-Location"],
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert resumed.returncode == 0, resumed.stderr
    assert hashlib.sha256(partial.read_bytes()).digest() == hashlib.sha256(payload).digest()
    served.processes.wait_until(
        "the download's end in the timeline",
        lambda: "download_completed" in timeline(served, share["token"]),
        timeout=30,
    )
    assert timeline(served, share["token"])[-2:] == ["download_completed", "purged"]
