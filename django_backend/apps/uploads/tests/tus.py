"""Speaking tus to the app through Django's test client: plain helpers for the tests."""

import base64
import hashlib
import threading
from urllib.parse import urlsplit

from django.http import HttpResponseBase
from django.test import Client

from apps.shares.tokens import token_hash
from apps.uploads.models import Upload

CREATE_URL = "/api/v1/uploads/"
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
DEADLINE = 30.0  # seconds a test waits for a thread to get somewhere: a failure, not a sleep


def encode_metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in values.items()
    )


def create(
    client: Client,
    length: int,
    *,
    metadata: dict[str, str] | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponseBase:
    """POST /api/v1/uploads/ (with `body`: creation-with-upload)."""
    all_headers = {**TUS, "Upload-Length": str(length)}
    if metadata is not None:
        all_headers["Upload-Metadata"] = encode_metadata(**metadata)
    all_headers.update(headers or {})
    if body is None:
        # No body at all, as tus clients send it (the test client's post() sends an empty
        # multipart form).
        return client.generic("POST", CREATE_URL, data=b"", headers=all_headers)
    return client.generic(
        "POST", CREATE_URL, data=body, content_type=OFFSET_STREAM, headers=all_headers
    )


def created_path(client: Client, length: int, **options) -> str:
    """Create an upload; the path of its URL."""
    response = create(client, length, **options)
    assert response.status_code == 201, response.content
    return urlsplit(response["Location"]).path


def patch(
    client: Client,
    path: str,
    offset: int,
    body: bytes,
    *,
    content_type: str = OFFSET_STREAM,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> HttpResponseBase:
    all_headers = {**TUS, "Upload-Offset": str(offset), **(headers or {})}
    # CONTENT_TYPE as well: the test client leaves it out when the body is empty.
    return client.generic(
        "PATCH",
        path,
        data=body,
        content_type=content_type,
        headers=all_headers,
        **{"CONTENT_TYPE": content_type, **extra},
    )


def head(client: Client, path: str, headers: dict[str, str] | None = None) -> HttpResponseBase:
    return client.head(path, headers={**TUS, **(headers or {})})


def checksum(algorithm: str, content: bytes) -> str:
    """An Upload-Checksum header value."""
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, content).digest()).decode()}"


def upload_of(path: str) -> Upload:
    """The row behind an upload URL's path."""
    return Upload.objects.get(id_hash=token_hash(path.rsplit("/", 1)[-1]))


class HeldBody:
    """A request body (wsgi.input) that gives out its first `hold_at` bytes, then waits for
    `release` before the rest, or raises `fail_with` there instead."""

    def __init__(self, content: bytes, hold_at: int, fail_with: Exception | None = None):
        self.content = content
        self.hold_at = hold_at
        self.position = 0
        self.fail_with = fail_with
        self.holding = threading.Event()
        self.release = threading.Event()

    def read(self, size: int = -1) -> bytes:
        if self.position == self.hold_at:
            self.holding.set()
            if not self.release.wait(DEADLINE):
                raise TimeoutError("the test never released the body")
            if self.fail_with is not None:
                raise self.fail_with
        end = len(self.content) if size < 0 else self.position + size
        if self.position < self.hold_at:
            end = min(end, self.hold_at)
        chunk = self.content[self.position : end]
        self.position += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:  # Django's LimitedStream wants one
        return self.read(size)
