"""Share and manage tokens.

The manage token is 256 random bits; the share token is derived from it, so the manage page
can show the share link again while the database holds only SHA-256 hashes of both.
"""

import base64
import hashlib
import secrets

SHARE_TOKEN_LENGTH = 22  # 132 bits of the digest, url-safe base64
# What a token in a URL may look like; anything else is a 404 without a database query.
TOKEN_PATTERN = r"[A-Za-z0-9_-]{16,64}"  # noqa: S105 - a pattern, not a secret


def new_manage_token() -> str:
    return secrets.token_urlsafe(32)


def share_token_for(manage_token: str) -> str:
    digest = hashlib.sha256(b"share:" + manage_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SHARE_TOKEN_LENGTH]


def token_hash(token: str) -> str:
    """What the database stores in place of a token."""
    return hashlib.sha256(token.encode()).hexdigest()
