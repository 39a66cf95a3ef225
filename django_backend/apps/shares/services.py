"""Every state change of a share: create, claim, revoke, purge.

Views, the API, admin actions, tasks and commands translate their input to one of these
calls and its result (or exception from `exceptions.py`) to their output. Storage I/O stays
outside database transactions: a crash between the two leaves an orphan in one direction or
the other, which the reconciler removes, never a reachable half-file.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from .exceptions import (
    InvalidShareOption,
    PasswordRequired,
    ShareGone,
    ShareNotFound,
    StorageUnavailable,
    WrongPassword,
)
from .filenames import clean_content_type, clean_filename
from .models import Share
from .tokens import new_manage_token, share_token_for, token_hash

logger = logging.getLogger(__name__)

STORAGE_PREFIX = "shares/"
MAX_PASSWORD_LENGTH = 1024  # Argon2 hashes anything, but nobody needs more than this.


@dataclass(frozen=True)
class CreatedShare:
    """A new share with its two secrets, which exist only in this object and the response."""

    share: Share
    share_token: str
    manage_token: str


def validate_share_options(
    *, expires_in: int | None, max_downloads: int, password: str = ""
) -> int:
    """Raise InvalidShareOption naming the first field out of range.

    Returns the lifetime in seconds, DEFAULT_EXPIRES_IN when none was given.
    """
    if expires_in is None:
        expires_in = settings.DEFAULT_EXPIRES_IN
    if not settings.MIN_EXPIRES_IN <= expires_in <= settings.MAX_EXPIRES_IN:
        raise InvalidShareOption(
            "expires_in",
            f"must be between {settings.MIN_EXPIRES_IN} and {settings.MAX_EXPIRES_IN} seconds.",
        )
    if not 1 <= max_downloads <= settings.MAX_DOWNLOADS_LIMIT:
        raise InvalidShareOption(
            "max_downloads", f"must be between 1 and {settings.MAX_DOWNLOADS_LIMIT}."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidShareOption(
            "password", f"must be at most {MAX_PASSWORD_LENGTH} characters long."
        )
    return expires_in


def _sha256_of(file: File) -> str:
    # Uploads arrive hashed by ShareUploadHandler; a local file (the create_share command)
    # is hashed here, in chunks.
    if digest := getattr(file, "sha256", None):
        return digest
    hasher = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks():
        hasher.update(chunk)
    file.seek(0)
    return hasher.hexdigest()


def share_create(
    *,
    file: File,
    name: str | None = None,
    content_type: str | None = None,
    expires_in: int | None = None,
    max_downloads: int = 1,
    password: str = "",
) -> CreatedShare:
    """Store the bytes under a random name, then record the share.

    The bytes are written before the row: a crash in between leaves a file with no row,
    which reconcile_storage deletes after its grace period. The reverse order could leave a
    row pointing at nothing, offered to a recipient.
    """
    expires_in = validate_share_options(
        expires_in=expires_in, max_downloads=max_downloads, password=password
    )

    display_name = clean_filename(name if name is not None else file.name)
    sha256 = _sha256_of(file)
    size = file.size
    try:
        storage_name = default_storage.save(
            f"{STORAGE_PREFIX}{secrets.token_hex(16)}", file, max_length=255
        )
    except OSError as exc:
        logger.error("Could not store an upload: %s", exc)
        raise StorageUnavailable() from exc

    manage_token = new_manage_token()
    share_token = share_token_for(manage_token)
    now = timezone.now()
    try:
        share = Share.objects.create(
            share_token_hash=token_hash(share_token),
            manage_token_hash=token_hash(manage_token),
            storage_name=storage_name,
            name=display_name,
            size=size,
            sha256=sha256,
            content_type=clean_content_type(content_type, display_name),
            password=make_password(password) if password else "",
            max_downloads=max_downloads,
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in),
        )
    except BaseException:
        _delete_bytes(storage_name)
        raise
    logger.info("Share %s created (%s bytes).", share.pk, size)
    return CreatedShare(share=share, share_token=share_token, manage_token=manage_token)


def share_get(*, share_token: str) -> Share:
    """The share behind a recipient's link, if a download could still be served."""
    share = Share.objects.filter(share_token_hash=token_hash(share_token)).first()
    if share is None:
        raise ShareNotFound()
    if not share.is_available:
        raise ShareGone()
    return share


def share_get_for_manage(*, manage_token: str) -> Share:
    """The share behind a sender's manage link, whatever its status."""
    share = Share.objects.filter(manage_token_hash=token_hash(manage_token)).first()
    if share is None:
        raise ShareNotFound()
    return share


def share_check_password(*, share: Share, password: str) -> None:
    """Raise PasswordRequired or WrongPassword unless the password opens the share."""
    if not share.password:
        return
    if not password:
        raise PasswordRequired()
    if not check_password(password, share.password):
        raise WrongPassword()


def share_claim(*, share_token: str, password: str = "") -> Share:
    """Take one download, exactly: of any number of simultaneous claims on any number of
    processes, at most `max_downloads` succeed; the others raise ShareGone.

    The guarantee is a single conditional UPDATE: the database applies
    `downloads = downloads + 1 WHERE downloads < max_downloads AND ...` under its row lock
    (PostgreSQL) or its write lock (SQLite), so the check and the increment cannot be
    separated by another claim. The password is checked before, outside any lock, since
    Argon2 is slow by design.

    The count is taken when the download starts: a download that breaks off still counts.
    """
    share = share_get(share_token=share_token)
    share_check_password(share=share, password=password)

    now = timezone.now()
    with transaction.atomic():
        claimed = Share.objects.filter(
            pk=share.pk,
            downloads__lt=F("max_downloads"),
            expires_at__gt=now,
            revoked_at__isnull=True,
            purged_at__isnull=True,
        ).update(
            downloads=F("downloads") + 1,
            # SET expressions see the row as it was before the update.
            consumed_at=Case(
                When(downloads=F("max_downloads") - 1, then=Value(now)),
                default=F("consumed_at"),
            ),
        )
        if claimed != 1:
            raise ShareGone()
        # Our UPDATE holds the row lock until commit, so this reads our own count.
        share.refresh_from_db()
    logger.info("Share %s claimed (%s of %s).", share.pk, share.downloads, share.max_downloads)
    return share


def share_revoke(*, manage_token: str) -> Share:
    """End a share at the sender's request and delete its bytes. Idempotent."""
    share = share_get_for_manage(manage_token=manage_token)
    Share.objects.filter(
        pk=share.pk, revoked_at__isnull=True, downloads__lt=F("max_downloads")
    ).update(revoked_at=timezone.now())
    share_purge(share_id=share.pk)
    share.refresh_from_db()
    return share


def share_purge(*, share_id: int) -> bool:
    """Delete the bytes of an ended share and mark it purged. Idempotent.

    Returns whether bytes were deleted now. Bytes of a share that can still be downloaded
    are never touched.
    """
    share = Share.objects.filter(pk=share_id).first()
    if share is None or share.purged_at is not None or share.is_available:
        return False
    if not _delete_bytes(share.storage_name):
        return False
    Share.objects.filter(pk=share.pk, purged_at__isnull=True).update(purged_at=timezone.now())
    logger.info("Share %s purged.", share.pk)
    return True


def _delete_bytes(storage_name: str) -> bool:
    try:
        default_storage.delete(storage_name)
    except OSError as exc:
        # The purge job retries; nothing is offered meanwhile, the share has ended.
        logger.warning("Could not delete %s from storage: %s", storage_name, exc)
        return False
    return True
