"""The bytes of shares in storage (local disk or S3, through django-storages).

Stored names are random, under one prefix; nothing here knows about share rows. Every
function maps storage failures to what its callers need: a missing file, a failure to
retry later, or StorageUnavailable for a request.
"""

import logging
import secrets
from collections.abc import Iterator

from django.core.files import File
from django.core.files.storage import default_storage

from .exceptions import StorageUnavailable

logger = logging.getLogger(__name__)

STORAGE_PREFIX = "shares/"


def new_name() -> str:
    """A fresh random storage name under STORAGE_PREFIX."""
    return f"{STORAGE_PREFIX}{secrets.token_hex(16)}"


def save_bytes(file: File) -> str:
    """Store a file under a new random name; the name. StorageUnavailable on any failure."""
    try:
        return default_storage.save(new_name(), file, max_length=255)
    except Exception as exc:  # disk full, S3 unreachable: any storage failure
        logger.error("Could not store an upload: %s", exc)
        raise StorageUnavailable() from exc


def open_bytes(storage_name: str, *, start: int = 0, length: int | None = None) -> File:
    """A readable stream of stored bytes from `start` (`length` of them, or to the end),
    never loaded whole into memory. A local file is positioned at `start`, so the WSGI
    server's sendfile sends from there.

    Raises FileNotFoundError when there is no such file, StorageUnavailable on any other
    failure.
    """
    try:
        stored = default_storage.open(storage_name, "rb")
        s3_object = getattr(stored, "obj", None)
        if s3_object is not None:
            # django-storages' S3File would first copy the whole object into a spooled
            # temporary file (in memory up to AWS_S3_MAX_MEMORY_SIZE, which defaults to no
            # limit); the object's body streams straight from S3 instead, the asked range
            # only.
            options = {}
            if start or length is not None:
                last = "" if length is None else str(start + length - 1)
                options["Range"] = f"bytes={start}-{last}"
            return File(s3_object.get(**options)["Body"], name=storage_name)
        if start:
            stored.seek(start)
        return stored
    except Exception as exc:
        if storage_says_missing(exc):
            raise FileNotFoundError(storage_name) from None
        logger.error("Could not open %s in storage: %s", storage_name, exc)
        raise StorageUnavailable() from exc


def bytes_exist(storage_name: str) -> bool:
    try:
        return default_storage.exists(storage_name)
    except Exception as exc:
        logger.error("Could not look up %s in storage: %s", storage_name, exc)
        raise StorageUnavailable() from exc


def storage_says_missing(exc: BaseException) -> bool:
    """Whether a storage error means "no such file": local, or an S3 error code."""
    if isinstance(exc, FileNotFoundError):
        return True
    error = getattr(exc, "response", None) or {}
    return error.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}


def delete_bytes(storage_name: str) -> bool:
    """Delete stored bytes; whether that worked (deleting what is gone is fine)."""
    try:
        default_storage.delete(storage_name)
    except Exception as exc:  # any storage failure, local or S3
        # The purge job retries; nothing is offered meanwhile, the share has ended.
        logger.warning("Could not delete %s from storage: %s", storage_name, exc)
        return False
    return True


def stored_names(prefix: str = STORAGE_PREFIX) -> Iterator[str]:
    """Every file name under prefix in storage, recursively."""
    try:
        directories, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{prefix}{file_name}"
    for directory in directories:
        yield from stored_names(f"{prefix}{directory}/")
