"""The tus 1.0.0 headers: what this server announces, and parsing what clients send.

Plain functions of header values, raising InvalidUploadHeader (400) or the protocol's own
statuses; nothing here touches the database or storage.
"""

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from .exceptions import InvalidUploadHeader, UnsupportedMediaType, UnsupportedVersion

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# Upload-Checksum algorithms, by the names tus uses. The protocol requires sha1.
CHECKSUM_ALGORITHMS: dict[str, Callable[[], "hashlib._Hash"]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "md5": hashlib.md5,
}
METADATA_KEYS = ("filename", "filetype", "expires_in", "max_downloads", "password")
# A byte count as a header value: digits only (no sign, no spaces), at most 18 of them so
# that it fits a 64-bit column whatever it says.
_BYTE_COUNT = re.compile(r"[0-9]{1,18}")
_METADATA_KEY = re.compile(r"[^\s,]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def check_version(value: str | None) -> None:
    """412 unless the request speaks tus 1.0.0 (every request but OPTIONS must say so)."""
    if value is None:
        raise UnsupportedVersion("Send Tus-Resumable: 1.0.0 with every request.")
    if value.strip() != TUS_VERSION:
        raise UnsupportedVersion(
            f"Tus-Resumable {value.strip()[:20]!r} is not supported; this server speaks "
            f"{TUS_VERSION}."
        )


def check_offset_content_type(content_type: str | None) -> None:
    """415 unless the body is declared as `application/offset+octet-stream`."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type must be {OFFSET_CONTENT_TYPE}, not {media_type[:60] or 'missing'}."
        )


def byte_count(header: str, value: str | None) -> int:
    """A non-negative integer header (Upload-Length, Upload-Offset); 400 naming it."""
    if value is None:
        raise InvalidUploadHeader(header, "is required.")
    if not _BYTE_COUNT.fullmatch(value.strip()):
        raise InvalidUploadHeader(header, "must be a non-negative integer.")
    return int(value.strip())


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs, keys unique, a value may
    be empty. Values must be UTF-8 text; keys this server does not use are ignored."""
    metadata: dict[str, str] = {}
    if not value or not value.strip():
        return metadata
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        encoded = encoded.strip()
        if not _METADATA_KEY.fullmatch(key):
            raise InvalidUploadHeader("Upload-Metadata", "has an empty key.")
        if key in metadata:
            raise InvalidUploadHeader("Upload-Metadata", f"has the key {key[:40]!r} twice.")
        try:
            if not _BASE64.fullmatch(encoded):
                raise ValueError
            # Some clients leave out the padding.
            decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            metadata[key] = decoded.decode("utf-8")
        except (ValueError, binascii.Error):
            raise InvalidUploadHeader(
                "Upload-Metadata", f"the value of {key[:40]!r} is not base64 of UTF-8 text."
            ) from None
    return metadata


def encode_metadata(metadata: dict[str, str]) -> str:
    """The Upload-Metadata header for these pairs (values base64)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )


@dataclass(frozen=True)
class ShareOptions:
    """The share's options, as Upload-Metadata gives them (ranges are checked by the
    shares app's validate_share_options)."""

    filename: str
    filetype: str
    expires_in: int | None
    max_downloads: int
    password: str


def share_options(metadata: dict[str, str]) -> ShareOptions:
    max_downloads = _metadata_integer(metadata, "max_downloads")
    return ShareOptions(
        filename=metadata.get("filename", ""),
        filetype=metadata.get("filetype", ""),
        expires_in=_metadata_integer(metadata, "expires_in"),
        max_downloads=1 if max_downloads is None else max_downloads,
        password=metadata.get("password", ""),
    )


def _metadata_integer(metadata: dict[str, str], key: str) -> int | None:
    text = metadata.get(key, "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise InvalidUploadHeader("Upload-Metadata", f"{key} must be a whole number.")
    return int(text)


@dataclass(frozen=True)
class Checksum:
    """Upload-Checksum: the algorithm's name and the digest the body must have."""

    algorithm: str
    digest: bytes

    def hasher(self) -> "hashlib._Hash":
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """`<algorithm> <base64 digest>`; 400 for an algorithm this server does not support."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        supported = ", ".join(CHECKSUM_ALGORITHMS)
        raise InvalidUploadHeader(
            "Upload-Checksum", f"{algorithm[:20]!r} is not supported; use one of {supported}."
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidUploadHeader("Upload-Checksum", "the digest is not base64.") from None
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise InvalidUploadHeader(
            "Upload-Checksum", f"the digest is not the length of a {algorithm} digest."
        )
    return Checksum(algorithm=algorithm, digest=digest)
