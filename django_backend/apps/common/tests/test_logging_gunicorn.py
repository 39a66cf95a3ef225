"""No token reaches the output of a real gunicorn, whatever the request looks like.

gunicorn is started as production starts it: through scripts/entrypoint.sh, in
django_backend/ (so with its gunicorn.conf.py), on a free loopback port, with the access log
on and at debug level, so that every line gunicorn can write about a request is written. A
share is created through the API, and its tokens (share, manage, download session), an
upload's id and the API token it was made with are then sent in many shapes: well-formed
requests to known and unknown paths with trailing punctuation, percent-encoded, in the query
string, the Referer, the User-Agent and X-Request-ID; and malformed request lines and headers
that gunicorn rejects itself, quoting them in its error log. The whole output is read once
gunicorn has stopped: no token may be in it, and the lines about those requests must be.
"""

import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.env import DJANGO_DIR, VENV_BIN, loopback_server_env
from tests.support.processes import Process, Processes, answers, free_port, gunicorn

REQUEST_TIMEOUT = 10.0  # seconds for one request; gunicorn answers these at once


@dataclass
class Server:
    url: str
    port: int
    env: dict[str, str]
    processes: Processes
    web: Process


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = loopback_server_env(
        tmp_path,
        # A database of its own in either pass: what gunicorn logs does not depend on it.
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        # No worker runs: tasks go to an in-process broker, never to a queue under var/.
        CELERY_BROKER_URL="memory://localhost/",
        RATE_LIMIT_UPLOADS="1000/h",
        RATE_LIMIT_DOWNLOADS="1000/h",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    options = [
        *("--access-logfile", "-", "--log-level", "debug"),
        *("--graceful-timeout", "2", "--no-control-socket"),
    ]
    with Processes(tmp_path) as processes:
        web = processes.start(
            "gunicorn", gunicorn(port, workers=1, threads=4, options=options), env=env
        )
        url = f"http://127.0.0.1:{port}"
        processes.wait_until("gunicorn to answer", lambda: answers(f"{url}/health/"), 90)
        yield Server(url=url, port=port, env=env, processes=processes, web=web)


def raw_request(port: int, request: bytes) -> bytes:
    """Send `request` as it is, and read the answer until gunicorn closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert match, answer[:200]
    return int(match.group(1))


def issue_tokens(server: Server) -> dict[str, str]:
    """A user's API token, a share uploaded with it, a download session and an upload."""
    created = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "shell", "-c", CREATE_API_TOKEN],
        cwd=DJANGO_DIR,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    api_token = created.stdout.strip().splitlines()[-1]
    http = requests.Session()
    http.trust_env = False  # loopback directly, whatever proxy the environment names
    share = http.post(
        f"{server.url}/api/v1/shares",
        files={"file": ("notes.txt", b"hello, world\n")},
        data={"max_downloads": "5"},
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=REQUEST_TIMEOUT,
    )
    assert share.status_code == 201, share.text
    body = share.json()
    download = http.post(
        f"{server.url}/api/v1/shares/{body['token']}/download", timeout=REQUEST_TIMEOUT
    )
    assert download.content == b"hello, world\n"
    upload = http.post(
        f"{server.url}/api/v1/uploads/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5"},
        timeout=REQUEST_TIMEOUT,
    )
    assert upload.status_code == 201, upload.text
    return {
        "share": body["token"],
        "manage": body["manage_token"],
        "session": download.headers["Content-Location"].rstrip("/").rsplit("/", 1)[-1],
        "upload": upload.headers["Location"].rsplit("/", 1)[-1],
        "api": api_token,
    }


CREATE_API_TOKEN = """
from apps.accounts.models import User
from apps.accounts.services import api_token_create
user = User.objects.create_user("log-test", password=None)
print(api_token_create(user=user, name="logs").key)
"""

# Request lines gunicorn parses, and hands to the app: Django logs each answer (404, 405,
# 410), gunicorn's access log each line, with the headers below.
WELL_FORMED = [
    "GET /s/{t}. HTTP/1.1",
    "GET /m/{t}), HTTP/1.1",
    "POST /m/{t}>/revoke HTTP/1.1",
    "GET /api/v1/shares/{t}; HTTP/1.1",
    "DELETE /api/v1/manage/{t}> HTTP/1.1",
    "GET /api/v1/uploads/{t}%2E HTTP/1.1",
    "GET /d/{t}%29 HTTP/1.1",
    "GET /x/{t} HTTP/1.1",
    "GET /static/{t} HTTP/1.1",
    "GET /s/%2E{t}%2E HTTP/1.1",
    "GET /s/{encoded} HTTP/1.1",
    "GET /x/?t={t} HTTP/1.1",
    "GET //s/{t}] HTTP/1.1",
    "GET http://127.0.0.1/s/{t}. HTTP/1.1",
]
HEADERS = (
    "Host: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n"
    "Referer: https://chat.example/m/{t}).\r\nUser-Agent: preview ({t})\r\n"
    "X-Request-ID: {t}\r\n"
)

# Requests gunicorn rejects itself with 400 (or 501), quoting what it could not parse in
# its error log: "Invalid request from ip=127.0.0.1: <what, with the line>".
MALFORMED = [
    "GET /s/{t} HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "GET /s/ {t}. HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /s/{t}\x00. HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /m/{t}\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /s/{t}). HTTP/9.9\r\nHost: x\r\n\r\n",
    "G<T /s/{t} HTTP/1.1\r\nHost: x\r\n\r\n",
    "{t} /s/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /m/{t}).\r\n\r\n",
    "GET /s/{t} HTTP/1.1\r\nHost: x\r\nX-Bad {t}: 1\r\n\r\n",
    "GET /s/{t} HTTP/1.1\r\nHost: x\r\nX-Token: {t}\x01\r\n\r\n",
    "POST /s/{t} HTTP/1.1\r\nHost: x\r\nContent-Length: {t}\r\n\r\n",
    "POST /s/{t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {t}\r\n\r\n",
]


def test_no_token_reaches_gunicorns_output(server: Server):
    tokens = issue_tokens(server)
    well_formed, malformed = [], []
    for token in tokens.values():
        values = {"t": token, "encoded": "".join(f"%{b:02X}" for b in token.encode())}
        headers = HEADERS.format(**values)
        for line in WELL_FORMED:
            request = f"{line.format(**values)}\r\n{headers}\r\n".encode("latin-1")
            well_formed.append(status_of(raw_request(server.port, request)))
        for shape in MALFORMED:
            request = shape.format(**values).encode("latin-1")
            malformed.append(status_of(raw_request(server.port, request)))
        # Bytes that are not text at all.
        raw = b"GET /s/" + token.encode() + b"\xe9\xff HTTP/1.1\r\nHost: x\r\n\r\n"
        malformed.append(status_of(raw_request(server.port, raw)))
    server.processes.stop()  # gunicorn flushes its output on the way out
    output = server.web.log.read_bytes()
    text = output.decode("utf-8", errors="replace")

    for kind, token in tokens.items():
        encoded = "".join(f"%{byte:02X}" for byte in token.encode())
        assert token.encode() not in output, kind
        assert encoded.encode() not in output, kind
    # Every request is in the output (so that the test can fail), with its tokens redacted:
    # gunicorn's line for each one it rejected, Django's for each error answer, gunicorn's
    # access log for each one it served.
    assert all(status in (400, 501) for status in malformed), malformed
    assert text.count("Invalid request from ip=127.0.0.1: ") == len(malformed)
    assert text.count("logger=django.request ") == sum(s >= 400 for s in well_formed)
    assert len(re.findall(r"^127\.0\.0\.1 - - \[", text, re.MULTILINE)) > len(well_formed)
    assert "Invalid HTTP method: '[redacted]'" in text
    assert "Invalid HTTP request line: 'GET /m/[redacted]).'" in text
    assert "msg='Not Found: /m/[redacted]),'" in text
    assert '"GET /s/[redacted]. HTTP/1.1" 404' in text
    assert '"https://chat.example/m/[redacted])." "preview ([redacted])"' in text
