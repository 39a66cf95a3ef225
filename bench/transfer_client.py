"""The benchmark's client: the test file, sizes, uploads and downloads through the API, and
what nginx logged of a download.

The client never holds the file in memory: a PUT body is the open file (or a generator of
1 MiB blocks, sent chunked), a multipart body is produced on the fly by a small file-like
encoder (no requests-toolbelt needed), and downloads are streamed.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from served_app import MIB

from tests.support.processes import Process, ProcessError, access_log_entries, wait_until

BLOCK = MIB
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 300
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
DOWNLOAD_LOG_PATH = "/api/v1/shares/<token>/download"  # as the template's log redacts it
LOG_DEADLINE = 3.0  # nginx logs a request once the response is sent, a moment after

_SUFFIXES = {"": 1, "K": 1024, "M": MIB, "G": 1024**3, "T": 1024**4}


class MismatchError(Exception):
    """The downloaded bytes are not the uploaded ones."""


def parse_size(text: str) -> int:
    """Bytes from '1073741824', '64M', '1G', '512KiB' (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64M or 1G)")
    value = int(match.group(1)) * _SUFFIXES[match.group(2)]
    if value < 1:
        raise argparse.ArgumentTypeError("size must be at least 1 byte")
    return value


def human_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def make_file(path: Path, size: int) -> str:
    """Write `size` bytes of cheap random-ish data; return their SHA-256.

    A random 1 MiB block repeated, each copy stamped with its index so that no two blocks
    are equal.
    """
    block = bytearray(secrets.token_bytes(BLOCK))
    hasher = hashlib.sha256()
    written = 0
    index = 0
    with path.open("wb") as out:
        while written < size:
            block[:8] = index.to_bytes(8, "big")
            chunk = memoryview(block)[: min(BLOCK, size - written)]
            out.write(chunk)
            hasher.update(chunk)
            written += len(chunk)
            index += 1
    return hasher.hexdigest()


def write_test_file(tmp: Path, size: int) -> tuple[Path, str]:
    """The file to send, written into `tmp`, and its SHA-256."""
    data = tmp / f"bench-{size}.bin"
    print(f"Writing {human_size(size)} to {data} ...", flush=True)
    return data, make_file(data, size)


class MultipartBody:
    """A multipart/form-data body read from disk as it is sent.

    requests sees `__len__` and sends a Content-Length; urllib3 then calls `read()` in
    blocks, so the file is never loaded whole. `fields` (small form fields such as
    max_downloads) go before the `file` field; the others keep their defaults.
    """

    def __init__(self, path: Path, filename: str, fields: dict[str, str] | None = None) -> None:
        self.boundary = f"bench-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (fields or {}).items()
        ]
        parts.append(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        head = "".join(parts).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._size = len(head) + path.stat().st_size + len(tail)
        self._parts: Iterator[bytes] = self._generate(head, path, tail)
        self._current = b""
        self._offset = 0

    @staticmethod
    def _generate(head: bytes, path: Path, tail: bytes) -> Iterator[bytes]:
        yield head
        yield from read_blocks(path)
        yield tail

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size
        pieces = []
        while size > 0:
            if self._offset >= len(self._current):
                part = next(self._parts, None)
                if part is None:
                    break
                self._current, self._offset = part, 0
            piece = self._current[self._offset : self._offset + size]
            self._offset += len(piece)
            size -= len(piece)
            pieces.append(piece)
        return b"".join(pieces)


def read_blocks(path: Path) -> Iterator[bytes]:
    """The file in 1 MiB blocks: a body of unknown length, sent chunked."""
    with path.open("rb") as source:
        while chunk := source.read(BLOCK):
            yield chunk


@dataclass
class Endpoint:
    """Where the client sends its requests (gunicorn, or nginx in front of it), and the
    logs to show when a request fails."""

    base_url: str
    logs: Callable[[], str]


def upload(endpoint: Endpoint, path: Path, mode: str, *, max_downloads: int = 1) -> dict:
    """One share of `path`: PUT with the file as body (`put`), the same chunked
    (`put-chunked`), or a multipart POST (`multipart`)."""
    options = {"max_downloads": str(max_downloads)}
    if mode == "multipart":
        body = MultipartBody(path, path.name, options)
        response = requests.post(
            f"{endpoint.base_url}/api/v1/shares",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=TIMEOUT,
        )
    elif mode == "put-chunked":
        response = requests.put(
            f"{endpoint.base_url}/api/v1/shares/{path.name}",
            params=options,
            data=read_blocks(path),
            headers={"Content-Type": "application/octet-stream"},
            timeout=TIMEOUT,
        )
    else:
        with path.open("rb") as source:
            response = requests.put(
                f"{endpoint.base_url}/api/v1/shares/{path.name}",
                params=options,
                data=source,
                headers={"Content-Type": "application/octet-stream"},
                timeout=TIMEOUT,
            )
    if response.status_code != 201:
        raise RuntimeError(
            f"upload answered {response.status_code}: {response.text[:500]}\n"
            f"server log:\n{endpoint.logs()}"
        )
    return response.json()


def download(endpoint: Endpoint, token: str) -> tuple[int, str]:
    """Stream the share; return (bytes received, their SHA-256)."""
    hasher = hashlib.sha256()
    received = 0
    with requests.post(
        f"{endpoint.base_url}/api/v1/shares/{token}/download", stream=True, timeout=TIMEOUT
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(
                f"download answered {response.status_code}: {response.text[:500]}\n"
                f"server log:\n{endpoint.logs()}"
            )
        for chunk in response.iter_content(chunk_size=BLOCK):
            hasher.update(chunk)
            received += len(chunk)
    return received, hasher.hexdigest()


def warm_up(endpoint: Endpoint, tmp: Path, mode: str) -> None:
    """First request, lazy imports: one tiny share through the whole path, not measured."""
    warm = tmp / "warmup.txt"
    warm.write_bytes(b"warm-up\n")
    download(endpoint, upload(endpoint, warm, mode)["token"])


def download_entries(nginx: Process) -> list[dict[str, str]]:
    """nginx's access-log entries for downloads, as dicts of their key=value fields."""
    return [
        entry for entry in access_log_entries(nginx.log) if entry.get("path") == DOWNLOAD_LOG_PATH
    ]


def check_offloaded(nginx: Process, size: int, seen_before: int) -> dict[str, str]:
    """That nginx, not gunicorn, sent the last download's bytes (upstream_bytes=0); its
    access-log entry."""
    try:
        entries = wait_until(
            "nginx's access-log entry of the download",
            lambda: download_entries(nginx)[seen_before:],
            LOG_DEADLINE,
        )
    except ProcessError:
        entries = []
    entry = entries[-1] if entries else {}
    if entry.get("bytes") != str(size) or entry.get("upstream_bytes") != "0":
        raise RuntimeError(
            f"the download was not offloaded to nginx (access log: {entry or 'no entry'}):\n"
            f"{nginx.tail(20)}"
        )
    return entry
