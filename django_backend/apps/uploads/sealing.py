"""The manage token of a finished upload, kept until its client fetches the links: sealed
with a key stream derived from the upload id, which the database does not hold (only its
hash), so a stolen database gives no link. Each upload id seals exactly one token."""

import base64
import hashlib


def _keystream(upload_id: str, length: int) -> bytes:
    return hashlib.shake_256(b"onetimeshare:upload-seal:" + upload_id.encode()).digest(length)


def seal(manage_token: str, upload_id: str) -> str:
    """The manage token encrypted with a key stream derived from the upload id, which the
    database does not hold (only its hash): a stolen database gives no link."""
    data = manage_token.encode()
    sealed = bytes(a ^ b for a, b in zip(data, _keystream(upload_id, len(data)), strict=True))
    return base64.urlsafe_b64encode(sealed).decode()


def unseal(sealed: str, upload_id: str) -> str:
    data = base64.urlsafe_b64decode(sealed)
    plain = bytes(a ^ b for a, b in zip(data, _keystream(upload_id, len(data)), strict=True))
    return plain.decode()
