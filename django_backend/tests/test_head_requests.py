"""HEAD through a real gunicorn: the headers GET would send, no body, no warning in the log.

Link-preview bots send HEAD all day. Django leaves dropping the body to the server, and
gunicorn drops it with a warning per response ("WSGI app sent body bytes on a no-body
response"); the app must send none. The test client cannot see this: it strips HEAD bodies
itself.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.env import loopback_server_env
from tests.support.processes import Process, Processes, answers, free_port, gunicorn

START_DEADLINE = 60.0  # seconds: migrate a fresh database, collect static files, boot
REQUEST_TIMEOUT = 30.0
NO_BODY_WARNING = "no-body response"
CONTENT = b"a file looked at by a link-preview bot\n" * 100
# Headers whose values differ from one request to the next by design.
PER_REQUEST = {"date", "x-request-id", "set-cookie"}


@dataclass
class Server:
    url: str
    process: Process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("head-requests")
    upload_tmp = root / "upload-tmp"
    upload_tmp.mkdir()
    port = free_port()
    env = loopback_server_env(
        root,
        DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
        MEDIA_ROOT=str(root / "media"),
        FILE_UPLOAD_TEMP_DIR=str(upload_tmp),
        CELERY_BROKER_URL="memory://localhost/",
        RATE_LIMIT_UPLOADS="1000/h",
        RATE_LIMIT_DOWNLOADS="1000/h",
    )
    command = gunicorn(port, options=["--graceful-timeout", "2", "--no-control-socket"])
    with Processes(root) as processes:
        server = Server(f"http://127.0.0.1:{port}", processes.start("gunicorn", command, env=env))
        processes.wait_until(
            "gunicorn to answer", lambda: answers(f"{server.url}/health/"), START_DEADLINE
        )
        yield server


@pytest.fixture(scope="module")
def share(server: Server) -> dict:
    response = requests.post(
        f"{server.url}/api/v1/shares",
        files={"file": ("preview.txt", CONTENT)},
        data={"max_downloads": "5"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def head_then_get(url: str) -> tuple[requests.Response, requests.Response]:
    head = requests.head(url, timeout=REQUEST_TIMEOUT)
    get = requests.get(url, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    return head, get


def assert_same_headers(head: requests.Response, get: requests.Response) -> None:
    assert head.status_code == get.status_code
    assert head.content == b""
    assert get.content, "GET has a body, so HEAD had one to drop"
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(len(get.content))
    same = {name.lower() for name in get.headers} - PER_REQUEST
    assert {name.lower() for name in head.headers} - PER_REQUEST == same
    for name in same:
        assert head.headers[name] == get.headers[name], name
    head_cookies = {cookie.name for cookie in head.cookies}
    assert head_cookies == {cookie.name for cookie in get.cookies}


def test_head_is_get_without_the_body_on_pages_errors_and_health(server, share):
    offset = len(server.process.log_text())
    paths = {
        "upload page": "/",
        "landing page": f"/s/{share['token']}",
        "liveness": "/health/",
        "404 page": f"/s/{secrets.token_urlsafe(16)}",
        "API error": "/api/v1/nothing",
    }

    for name, path in paths.items():
        head, get = head_then_get(server.url + path)
        try:
            assert_same_headers(head, get)
        except AssertionError as failure:
            raise AssertionError(f"{name} ({path}): {failure}") from failure

    assert NO_BODY_WARNING not in server.process.log_text()[offset:]
