"""Chunked upload bodies (`Transfer-Encoding: chunked`, as `curl -T - URL` sends from a pipe)
that break the framing, sent byte for byte to a real gunicorn: each answers 400 `invalid` as
JSON, logs no traceback, and leaves nothing in storage or in the upload spool.

The WSGI server decodes the chunks while the view reads the body, so what it raises on a
broken chunk reaches the app; Django's test client has no chunked framing to break.
"""

import json

import pytest

from tests.support.app_server import AppServer, raw_request

HEAD = (
    "PUT /api/v1/shares/{name} HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Connection: close"
)

BROKEN_CHUNKED_BODIES = [
    pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="size-not-hex"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative-size"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="size-with-0x"),
    pytest.param(b"5 5\r\nhello\r\n0\r\n\r\n", id="size-with-space-inside"),
    pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="size-line-empty"),
    pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="chunk-without-its-crlf"),
    pytest.param(b"5;ext=\xff\r\nhello\r\n0\r\n\r\n", id="extension-not-ascii"),
    pytest.param(b"5\rhello\r\n0\r\n\r\n", id="bare-cr-after-size"),
    pytest.param(b"5\r\nhello\r\n", id="ends-without-last-chunk"),
    pytest.param(b"10\r\nhel", id="ends-inside-a-chunk"),
    pytest.param(b"F" * 40 + b"\r\nhello", id="size-of-40-hex-digits"),
]


def put_refused_cleanly(server: AppServer, body: bytes, name: str = "piped.txt") -> None:
    log_before = len(server.log_text())
    stored_before = server.stored_files()

    status, content = raw_request(server, HEAD.format(name=name), body)

    assert status == 400, content
    error = json.loads(content)["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith("body:")
    assert "Traceback" not in server.log_text()[log_before:]
    assert server.stored_files() == stored_before
    assert server.spooled_files() == set()


@pytest.mark.parametrize("body", BROKEN_CHUNKED_BODIES)
def test_broken_chunked_put_answers_400_and_leaves_nothing(app_server, body):
    put_refused_cleanly(app_server, body)


def test_chunked_put_that_breaks_after_a_full_spool_chunk_leaves_nothing(app_server):
    """The spool file exists and holds data by the time the framing breaks."""
    chunk = b"x" * (512 * 1024)
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\nnot-a-size\r\n"

    put_refused_cleanly(app_server, body, name="big.bin")


def test_well_formed_chunked_put_is_stored_whole(app_server):
    stored_before = app_server.stored_files()
    body = b"5\r\nhello\r\n7;note=x\r\n, world\r\n0\r\n\r\n"

    status, content = raw_request(app_server, HEAD.format(name="piped.txt"), body)

    assert status == 201, content
    assert json.loads(content)["size"] == len(b"hello, world")
    [stored] = app_server.stored_files() - stored_before
    assert stored.read_bytes() == b"hello, world"
    assert app_server.spooled_files() == set()
