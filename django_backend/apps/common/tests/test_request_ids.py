"""Request ids: in every response's X-Request-ID header and in the log lines of the request.

A proxy's X-Request-ID is taken over, so one id follows a request from nginx to the app's
log; without one the app makes its own.
"""

import io
import logging
import re
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
PROXY_ID = "7f1c2a9e-3b4d-4e5f-8a6b-0c1d2e3f4a5b"


@pytest.fixture
def django_log() -> Iterator[io.StringIO]:
    """What the console handler of the "django" logger writes, for the test's duration."""
    handler = logging.getLogger("django").handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/", 200, id="upload-page"),
        pytest.param("get", "/health/", 200, id="health"),
        pytest.param("get", "/no-such-page", 404, id="404-page"),
        pytest.param("get", "/s/" + "A" * 22, 404, id="unknown-share"),
        pytest.param("get", "/api/v1/shares/" + "A" * 22, 404, id="api-404"),
        pytest.param("post", "/api/v1/shares", 400, id="api-400"),
        pytest.param("delete", "/", 405, id="405"),
    ],
)
def test_every_response_carries_a_generated_request_id(client, method, path, status):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_a_streamed_download_carries_a_request_id(client, make_share):
    created = make_share(b"bytes")

    response = client.post(f"/api/v1/shares/{created.share_token}/download")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"bytes"
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/health/").headers["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3


def test_a_well_formed_incoming_request_id_is_echoed(client):
    response = client.get("/health/", HTTP_X_REQUEST_ID=PROXY_ID)

    assert response.headers["X-Request-ID"] == PROXY_ID


def test_the_incoming_request_id_is_in_the_log_line_of_a_404(client, django_log):
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID=PROXY_ID)

    assert response.status_code == 404
    lines = [line for line in django_log.getvalue().splitlines() if "/no-such-page" in line]
    assert len(lines) == 1
    assert "Not Found: /no-such-page" in lines[0]
    assert f"request_id={PROXY_ID} " in lines[0]


def test_a_generated_request_id_is_the_one_in_the_log_line(client, django_log):
    response = client.get("/no-such-page")

    request_id = response.headers["X-Request-ID"]
    lines = [line for line in django_log.getvalue().splitlines() if "/no-such-page" in line]
    assert len(lines) == 1
    assert f"request_id={request_id} " in lines[0]


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("abc level=ERROR logger=apps.shares msg='forged'", id="key-value-pairs"),
        pytest.param("x" * 1000, id="overlong"),
    ],
)
def test_an_ill_formed_incoming_request_id_is_replaced_not_logged(client, django_log, incoming):
    # The log line is key=value pairs a collector parses: a client must not write its own.
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID=incoming)

    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    line = next(line for line in django_log.getvalue().splitlines() if "/no-such-page" in line)
    assert f"request_id={request_id} " in line
    assert incoming not in line
