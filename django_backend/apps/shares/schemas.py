"""What the JSON API answers: the share objects, the error object, and the share object
built from a share and its manage token (the tokens exist only in that answer)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Schema

from .links import manage_url, share_url
from .models import Share
from .tokens import share_token_for


class ErrorDetail(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


class ShareMetaOut(Schema):
    """What a recipient may see before downloading."""

    name: str
    size: int
    sha256: str
    content_type: str
    expires_at: datetime
    downloads_remaining: int
    password_required: bool


class ShareOut(ShareMetaOut):
    """The sender's view of a share, with both links."""

    token: str
    url: str
    manage_token: str
    manage_url: str
    max_downloads: int
    downloads: int
    status: str
    created_at: datetime
    consumed_at: datetime | None
    revoked_at: datetime | None


class OwnedShareOut(Schema):
    """One of the caller's shares. Its links cannot be shown again: only hashes are kept."""

    name: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    expires_at: datetime
    max_downloads: int
    downloads: int
    downloads_remaining: int
    password_required: bool
    status: str
    consumed_at: datetime | None
    revoked_at: datetime | None


class SharePageOut(Schema):
    shares: list[OwnedShareOut]
    next: str | None


ERRORS = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    410: ErrorOut,
    429: ErrorOut,
    503: ErrorOut,
}


def share_out(request: HttpRequest, share: Share, manage_token: str) -> dict:
    share_token = share_token_for(manage_token)
    return {
        "token": share_token,
        "url": share_url(request, share_token),
        "manage_token": manage_token,
        "manage_url": manage_url(request, manage_token),
        "name": share.name,
        "size": share.size,
        "sha256": share.sha256,
        "content_type": share.content_type,
        "created_at": share.created_at,
        "expires_at": share.expires_at,
        "max_downloads": share.max_downloads,
        "downloads": share.downloads,
        "downloads_remaining": share.downloads_remaining,
        "password_required": share.password_required,
        "status": share.status,
        "consumed_at": share.consumed_at,
        "revoked_at": share.revoked_at,
    }
