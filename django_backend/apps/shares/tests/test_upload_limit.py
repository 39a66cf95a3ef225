"""MAX_UPLOAD_SIZE: refused with 413 while the upload streams, with nothing left behind.

The limit is set small so that the tests move kilobytes, not gigabytes. The request bodies
that must not be read in full are file-like objects that count (or refuse) every read, put
in place of wsgi.input as a WSGI server would.
"""

import hashlib
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from apps.shares.models import Share
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db


LIMIT = 64 * 1024
FORM_OPTIONS = {"expires_in": "86400", "max_downloads": "1"}


@pytest.fixture(autouse=True)
def small_limit(settings) -> int:
    settings.MAX_UPLOAD_SIZE = LIMIT
    return LIMIT


@pytest.fixture
def nothing_left(media_root, upload_tmp):
    """Call after a refused upload: no bytes in storage, no spooled temporary file."""

    def check() -> None:
        assert stored_files(media_root) == []
        assert stored_files(upload_tmp) == []

    return check


class CountingBody(io.RawIOBase):
    """A request body that counts how much of it the server reads.

    `size=None` is an endless body (a chunked upload that never ends); reading more than
    `fail_after` bytes fails the test instead of looping forever.
    """

    def __init__(self, content: bytes | None = None, *, fail_after: int = 8 * 1024 * 1024):
        self.content = io.BytesIO(content) if content is not None else None
        self.bytes_read = 0
        self.fail_after = fail_after

    def readable(self) -> bool:
        return True

    def _count(self, chunk: bytes) -> bytes:
        self.bytes_read += len(chunk)
        if self.bytes_read > self.fail_after:
            raise AssertionError(f"the server read {self.bytes_read} bytes of a refused upload")
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        if self.content is not None:
            return self._count(self.content.read(size))
        if size is None or size < 0:
            raise AssertionError("the server tried to read an endless body to its end")
        return self._count(b"x" * size)

    def readline(self, size: int | None = -1) -> bytes:
        if self.content is not None:
            return self._count(self.content.readline(size))
        return self.read(size if size and size > 0 else 64 * 1024)


class UnreadableBody(io.RawIOBase):
    """A body that must not be touched at all."""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the server read a body it should have refused unread")

    readline = read


def assert_too_large_json(response: HttpResponseBase) -> None:
    assert response.status_code == 413, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "too_large"
    assert body["error"]["message"].strip()


def assert_too_large_page(response: HttpResponseBase) -> None:
    assert response.status_code == 413, response.content
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


def csrf_client() -> tuple[Client, str]:
    """A client that enforces CSRF as a browser's server would, with the token from GET /."""
    client = Client(enforce_csrf_checks=True)
    assert client.get("/").status_code == 200
    return client, client.cookies["csrftoken"].value


def form_data(csrf_token: str, content: bytes) -> dict:
    # The token first, as the page's form sends it, so that it is parsed before the file.
    return {
        "csrfmiddlewaretoken": csrf_token,
        "file": SimpleUploadedFile("big.bin", content),
        **FORM_OPTIONS,
    }


def body_of(response: HttpResponseBase) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


# --- one byte over -----------------------------------------------------------------------


def test_api_multipart_upload_one_byte_over_the_limit_answers_413_too_large(client, nothing_left):
    response = client.post(
        "/api/v1/shares", {"file": SimpleUploadedFile("big.bin", b"x" * (LIMIT + 1))}
    )

    assert_too_large_json(response)
    nothing_left()


def test_upload_form_one_byte_over_the_limit_answers_413_page(nothing_left):
    client, csrf_token = csrf_client()

    response = client.post("/", form_data(csrf_token, b"x" * (LIMIT + 1)))

    assert_too_large_page(response)
    nothing_left()


def test_put_one_byte_over_the_limit_answers_413_too_large(client, nothing_left):
    response = client.put(
        "/api/v1/shares/big.bin", data=b"x" * (LIMIT + 1), content_type="application/octet-stream"
    )

    assert_too_large_json(response)
    nothing_left()


def test_chunked_put_one_byte_over_the_limit_answers_413_too_large(client, nothing_left):
    # `curl -T - URL` from a pipe: no Content-Length, the body ends where the stream ends.
    response = client.generic(
        "PUT",
        "/api/v1/shares/big.bin",
        **{
            "CONTENT_TYPE": "application/octet-stream",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": CountingBody(b"x" * (LIMIT + 1)),
        },
    )

    assert_too_large_json(response)
    nothing_left()


# --- declared far over: refused unread ---------------------------------------------------

HUGE = 10 * 1024**3


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        pytest.param("POST", "/api/v1/shares", MULTIPART_CONTENT, id="api-multipart"),
        pytest.param("PUT", "/api/v1/shares/big.bin", "application/octet-stream", id="api-put"),
    ],
)
def test_api_declared_length_far_over_the_limit_answers_413_without_reading_the_body(
    client, nothing_left, method, path, content_type
):
    response = client.generic(
        method,
        path,
        **{
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(HUGE),
            "wsgi.input": UnreadableBody(),
        },
    )

    assert_too_large_json(response)
    nothing_left()


def test_upload_form_declared_length_far_over_the_limit_answers_413_without_reading_the_body(
    nothing_left,
):
    client, _ = csrf_client()

    response = client.generic(
        "POST",
        "/",
        **{
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "CONTENT_LENGTH": str(HUGE),
            "wsgi.input": UnreadableBody(),
        },
    )

    assert_too_large_page(response)
    nothing_left()


# --- the limit holds while streaming -----------------------------------------------------


def test_put_stops_reading_the_body_soon_after_the_limit(client, nothing_left):
    # Declared small enough not to be refused on its Content-Length alone (or, if it is,
    # nothing is read at all): the limit must stop the stream itself.
    total = LIMIT + 960 * 1024
    body = CountingBody(b"x" * total)

    response = client.generic(
        "PUT",
        "/api/v1/shares/big.bin",
        **{
            "CONTENT_TYPE": "application/octet-stream",
            "CONTENT_LENGTH": str(total),
            "wsgi.input": body,
        },
    )

    assert_too_large_json(response)
    assert body.bytes_read <= total // 2, body.bytes_read
    nothing_left()


def test_endless_chunked_put_is_cut_off_soon_after_the_limit(client, nothing_left):
    body = CountingBody(fail_after=LIMIT + 1024 * 1024)

    response = client.generic(
        "PUT",
        "/api/v1/shares/endless.bin",
        **{
            "CONTENT_TYPE": "application/octet-stream",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": body,
        },
    )

    assert_too_large_json(response)
    assert LIMIT < body.bytes_read <= LIMIT + 1024 * 1024
    nothing_left()


@pytest.mark.parametrize(
    ("path", "assert_too_large"),
    [
        pytest.param("/api/v1/shares", assert_too_large_json, id="api"),
        pytest.param("/", assert_too_large_page, id="html-form"),
    ],
)
def test_multipart_upload_stops_reading_the_body_soon_after_the_limit(
    client, nothing_left, path, assert_too_large
):
    content = encode_multipart(
        BOUNDARY, {**FORM_OPTIONS, "file": SimpleUploadedFile("big.bin", b"x" * (960 * 1024))}
    )
    body = CountingBody(content)

    response = client.generic(
        "POST",
        path,
        **{
            "CONTENT_TYPE": MULTIPART_CONTENT,
            "CONTENT_LENGTH": str(len(content)),
            "wsgi.input": body,
        },
    )

    assert_too_large(response)
    assert body.bytes_read <= len(content) // 2, body.bytes_read
    nothing_left()


# --- exactly at the limit ----------------------------------------------------------------

AT_LIMIT = bytes(range(256)) * (LIMIT // 256)


def assert_accepted_intact(client: Client, response: HttpResponseBase, media_root) -> None:
    assert response.status_code == 201, response.content
    share = response.json()
    assert share["size"] == LIMIT
    assert share["sha256"] == hashlib.sha256(AT_LIMIT).hexdigest()
    [stored] = stored_files(media_root)
    assert stored.read_bytes() == AT_LIMIT
    download = client.post(f"/api/v1/shares/{share['token']}/download")
    assert download.status_code == 200
    assert body_of(download) == AT_LIMIT


def test_api_multipart_upload_exactly_at_the_limit_is_accepted(client, media_root, upload_tmp):
    assert len(AT_LIMIT) == LIMIT

    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("exact.bin", AT_LIMIT)})

    assert_accepted_intact(client, response, media_root)
    assert stored_files(upload_tmp) == []


def test_put_exactly_at_the_limit_is_accepted(client, media_root, upload_tmp):
    response = client.put(
        "/api/v1/shares/exact.bin", data=AT_LIMIT, content_type="application/octet-stream"
    )

    assert_accepted_intact(client, response, media_root)
    assert stored_files(upload_tmp) == []


def test_chunked_put_exactly_at_the_limit_is_accepted(client, media_root, upload_tmp):
    response = client.generic(
        "PUT",
        "/api/v1/shares/exact.bin",
        **{
            "CONTENT_TYPE": "application/octet-stream",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": CountingBody(AT_LIMIT),
        },
    )

    assert_accepted_intact(client, response, media_root)
    assert stored_files(upload_tmp) == []


def test_upload_form_exactly_at_the_limit_is_accepted_with_csrf(media_root, upload_tmp):
    client, csrf_token = csrf_client()

    response = client.post("/", form_data(csrf_token, AT_LIMIT))

    assert response.status_code == 303, response.content
    manage_token = response["Location"].rsplit("/", 1)[-1]
    share = client.get(f"/api/v1/manage/{manage_token}").json()
    assert share["size"] == LIMIT
    assert share["sha256"] == hashlib.sha256(AT_LIMIT).hexdigest()
    [stored] = stored_files(media_root)
    assert stored.read_bytes() == AT_LIMIT
    assert stored_files(upload_tmp) == []


def test_a_put_body_shorter_than_its_declared_length_is_refused_and_nothing_kept(
    client, media_root, upload_tmp
):
    # The client declared 10 000 bytes and went away after 1 000: the server's input
    # stream simply ends early.
    response = client.generic(
        "PUT",
        "/api/v1/shares/cut-short.bin",
        b"x" * 10000,
        content_type="application/octet-stream",
        **{"wsgi.input": io.BytesIO(b"x" * 1000)},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "ended after 1000 of 10000 bytes" in response.json()["error"]["message"]
    assert Share.objects.count() == 0
    assert stored_files(media_root) == []
    assert stored_files(upload_tmp) == []
