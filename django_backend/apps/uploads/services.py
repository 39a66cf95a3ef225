"""Resumable uploads: create one, write a PATCH's bytes, complete it into a share, end it.

State lives in the upload's row and in storage (apps.uploads.staging), never in a process,
so any web process can take the next request.

One writer at a time, without a long transaction: a request streaming a large body must
not hold a database transaction (or SQLite's write lock) open for minutes. Instead it takes
a *lease*: a conditional UPDATE that sets `lease_token` and `lease_until` only where no
live lease is set, which PostgreSQL (row lock) and SQLite (write lock) both apply
atomically. Every later write of the request is fenced by its token (`WHERE lease_token =
mine`); the lease is renewed while bytes flow and released at the end. A request that
dies (kill -9, a lost machine) leaves its lease to run out after LEASE_SECONDS, so an
upload is never locked for longer than that. A second request meanwhile gets 409.
"""

import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.shares.clients import SYSTEM, Actor
from apps.shares.exceptions import StorageUnavailable, TooLarge
from apps.shares.filenames import clean_filename
from apps.shares.models import Share
from apps.shares.services import lifecycle
from apps.shares.storage import new_name
from apps.shares.tokens import share_token_for, token_hash
from apps.shares.uploads import BackgroundSha256, too_large_error

from . import staging
from .exceptions import (
    ChecksumMismatch,
    InvalidUploadHeader,
    UploadConflict,
    UploadGone,
    UploadNotFound,
)
from .models import Upload, UploadPart
from .protocol import Checksum, ShareOptions
from .sealing import seal, unseal

logger = logging.getLogger(__name__)

# A lease outlives its last renewal by this long: how long an upload stays locked after the
# request writing it died. Short, because a lapsed lease is taken over only by another
# request for the same upload, which is almost always its client resuming after a broken
# connection; a live holder renews it, lapsed or not, as long as nobody took it.
LEASE_SECONDS = 10
# Seconds of streaming between two renewals of the lease, each of which also records the
# bytes made durable so far: what a killed request loses at most.
RENEW_AFTER_SECONDS = 3


class BodyInterrupted(Exception):
    """The request body broke off: the client went away, or its framing failed."""


def new_upload_id() -> str:
    """The secret in the upload's URL: 192 random bits."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class CreatedUpload:
    upload: Upload
    upload_id: str


@dataclass(frozen=True)
class WriteResult:
    """The upload after a write; `created` is the share when this request completed it."""

    upload: Upload
    created: lifecycle.CreatedShare | None = None


@dataclass(frozen=True)
class UploadStatus:
    """The upload as GET shows it; `created` carries the share's links the one time they
    are shown there."""

    upload: Upload
    created: lifecycle.CreatedShare | None = None


# --- create ------------------------------------------------------------------------------


def upload_create(
    *,
    length: int,
    options: ShareOptions,
    owner: AbstractBaseUser | None = None,
) -> CreatedUpload:
    """Check the share's options, the size and the owner's quota now, from Upload-Length,
    then make room for the bytes and save the upload.

    The quota counts the owner's unfinished uploads as if they were shares already, so that
    uploads started side by side cannot pass it together.
    """
    expires_in = lifecycle.validate_share_options(
        expires_in=options.expires_in,
        max_downloads=options.max_downloads,
        password=options.password,
    )
    if length == 0:
        # Refused like every other empty upload: a link to nothing would only puzzle.
        raise InvalidUploadHeader("Upload-Length", "is 0: an empty file has nothing to share.")
    if length > settings.MAX_UPLOAD_SIZE:
        raise too_large_error()
    if owner is not None:
        lifecycle.check_quota(owner=owner, adding=length + _reserved_by(owner))
    upload_id = new_upload_id()
    now = timezone.now()
    backend = staging.backend_for_new_upload()
    upload = Upload(
        id_hash=token_hash(upload_id),
        owner=owner,
        length=length,
        name=clean_filename(options.filename),
        content_type=options.filetype[:255],
        expires_in=expires_in,
        max_downloads=options.max_downloads,
        password=make_password(options.password) if options.password else "",
        backend=backend,
        storage_name=new_name(),
        staging_name=staging.new_staging_name(),
        part_size=staging.part_size_for(length) if backend == Upload.Backend.S3 else 0,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.UPLOAD_SESSION_TTL),
    )
    staging.create(upload)
    try:
        upload.save()
    except BaseException:
        staging.remove(upload)
        raise
    logger.info("Upload %s created (%s bytes to come).", upload.pk, length)
    return CreatedUpload(upload=upload, upload_id=upload_id)


def _reserved_by(owner: AbstractBaseUser) -> int:
    unfinished = Upload.objects.uploading().filter(owner=owner)
    return unfinished.aggregate(total=Sum("length"))["total"] or 0


# --- read --------------------------------------------------------------------------------


def upload_get(*, upload_id: str) -> Upload:
    """The upload behind an id: UploadNotFound, or UploadGone once it expired or ended."""
    upload = Upload.objects.filter(id_hash=token_hash(upload_id)).first()
    if upload is None:
        raise UploadNotFound()
    if upload.state in {Upload.State.EXPIRED, Upload.State.ENDED}:
        raise UploadGone()
    return upload


def upload_status(*, upload_id: str, actor: Actor = SYSTEM) -> UploadStatus:
    """The upload for GET. After completion, the share and both its links, once: the
    manage token is unsealed and forgotten in one conditional UPDATE, so of two requests
    at once only one sees it.

    An upload whose bytes are all in but whose completion broke off (the process died) is
    completed here.
    """
    upload = upload_get(upload_id=upload_id)
    if upload.completed_at is None and upload.offset == upload.length:
        # UploadConflict: another request is completing it right now.
        with contextlib.suppress(UploadConflict):
            upload = upload_write(
                upload_id=upload_id, offset=upload.length, chunks=(), actor=actor
            ).upload
    if upload.completed_at is None or not upload.sealed_manage_token:
        return UploadStatus(upload=upload)
    sealed = upload.sealed_manage_token
    taken = Upload.objects.filter(pk=upload.pk, sealed_manage_token=sealed).update(
        sealed_manage_token=""
    )
    upload.sealed_manage_token = ""
    share = Share.objects.filter(pk=upload.share_id).first()
    if not taken or share is None:
        return UploadStatus(upload=upload)
    manage_token = unseal(sealed, upload_id)
    created = lifecycle.CreatedShare(
        share=share,
        share_token=share_token_for(manage_token),
        manage_token=manage_token,
    )
    return UploadStatus(upload=upload, created=created)


# --- the lease ---------------------------------------------------------------------------


def lease_take(upload: Upload, *, now: datetime | None = None, expired: bool = False) -> str:
    """Take the upload's lease, or raise UploadConflict while another request holds it.

    `expired` False: for a request, on a live session; True: for the expiry job, on an
    expired one. Either way the conditional UPDATE also decides between them.
    """
    now = now or timezone.now()
    lease = secrets.token_hex(16)
    session = Q(expires_at__lte=now) if expired else Q(expires_at__gt=now)
    taken = (
        Upload.objects.filter(session, pk=upload.pk, purged_at__isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_token=lease, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    if taken != 1:
        raise UploadConflict(
            "Another request is writing to this upload right now. Ask for its offset (HEAD) "
            "and resume once it has ended."
        )
    return lease


def lease_release(upload: Upload, lease: str) -> None:
    Upload.objects.filter(pk=upload.pk, lease_token=lease).update(lease_token="", lease_until=None)


def _lease_lost() -> UploadConflict:
    return UploadConflict(
        "This request lost its hold on the upload (it received nothing for too long) and "
        "its last bytes were not kept. Ask for the offset (HEAD) and resume."
    )


def _record(upload: Upload, lease: str, progress: staging.Progress | None) -> None:
    """Renew the lease and the session, and record what the writer made durable; fenced by
    the lease, so a request that lost it records nothing."""
    now = timezone.now()
    changes = {
        "lease_until": now + timedelta(seconds=LEASE_SECONDS),
        "expires_at": now + timedelta(seconds=settings.UPLOAD_SESSION_TTL),
    }
    if progress is not None:
        changes.update(offset=progress.offset, tail_size=progress.tail_size)
    with transaction.atomic():
        if Upload.objects.filter(pk=upload.pk, lease_token=lease).update(**changes) != 1:
            raise _lease_lost()
        if progress is not None and progress.parts:
            UploadPart.objects.bulk_create(
                [
                    UploadPart(upload=upload, number=number, etag=etag, size=size)
                    for number, etag, size in progress.parts
                ],
                update_conflicts=True,
                unique_fields=["upload", "number"],
                update_fields=["etag", "size"],
            )
    upload.expires_at = changes["expires_at"]
    if progress is not None:
        upload.offset, upload.tail_size = progress.offset, progress.tail_size


# --- write -------------------------------------------------------------------------------


def upload_write(
    *,
    upload_id: str,
    offset: int,
    chunks: Iterable[bytes],
    declared_length: int | None = None,
    checksum: Checksum | None = None,
    actor: Actor = SYSTEM,
) -> WriteResult:
    """Append a PATCH's body at `offset`, which must be the upload's offset (else 409).

    Without a checksum, what arrived is kept even if the body breaks off (the protocol asks
    the server to keep as much as it can), and recorded every RENEW_AFTER_SECONDS on the
    way. With one (Upload-Checksum), the chunk counts whole or not at all: on a mismatch it
    is discarded (ChecksumMismatch, 460). A body that would pass Upload-Length is refused
    (413) and discarded.

    When the last byte arrives, the share is created (see _complete) and returned. A body
    that breaks off (`chunks` raises BodyInterrupted, or ends short of `declared_length`)
    raises InvalidUploadHeader, after keeping what arrived.
    """
    upload = upload_get(upload_id=upload_id)
    if upload.completed_at is not None:
        if offset == upload.length and not declared_length:
            return WriteResult(upload=upload)
        raise UploadConflict(f"This upload is complete ({upload.length} bytes).")
    _check_offset(upload, offset)
    if declared_length is not None and offset + declared_length > upload.length:
        raise _passes_length(upload)
    lease = lease_take(upload)
    try:
        upload.refresh_from_db()
        if upload.completed_at is not None:
            raise UploadConflict(f"This upload is complete ({upload.length} bytes).")
        _check_offset(upload, offset)
        # Hashed by a thread of its own, beside the writes (see BackgroundSha256).
        whole_file = BackgroundSha256() if offset == 0 else None
        if upload.offset < upload.length:
            _receive(upload, lease, chunks, declared_length, checksum, whole_file)
        elif declared_length or any(chunks):
            raise _passes_length(upload)
        if upload.offset < upload.length:
            return WriteResult(upload=upload)
        sha256 = whole_file.hexdigest() if whole_file is not None else None
        created = _complete(upload, lease, upload_id=upload_id, sha256=sha256, actor=actor)
        return WriteResult(upload=upload, created=created)
    finally:
        lease_release(upload, lease)


def _check_offset(upload: Upload, offset: int) -> None:
    if offset != upload.offset:
        raise UploadConflict(
            f"Upload-Offset is {offset}, but the upload is at {upload.offset}: resume there."
        )


def _passes_length(upload: Upload) -> TooLarge:
    return TooLarge(
        f"The body passes Upload-Length ({upload.length} bytes, {upload.offset} received)."
    )


def _receive(
    upload: Upload,
    lease: str,
    chunks: Iterable[bytes],
    declared_length: int | None,
    checksum: Checksum | None,
    whole_file: BackgroundSha256 | None,
) -> None:
    start = upload.offset
    received = 0
    chunk_hash = checksum.hasher() if checksum else None
    last_record = time.monotonic()
    writer = staging.open_writer(upload)
    try:
        broke_off = False
        try:
            for chunk in chunks:
                if start + received + len(chunk) > upload.length:
                    writer.discard()
                    raise _passes_length(upload)
                writer.write(chunk)
                received += len(chunk)
                if chunk_hash is not None:
                    chunk_hash.update(chunk)
                if whole_file is not None:
                    whole_file.update(chunk)
                if time.monotonic() - last_record > RENEW_AFTER_SECONDS:
                    # With a checksum nothing counts before the end: only the lease moves.
                    _record(upload, lease, None if checksum else writer.checkpoint())
                    last_record = time.monotonic()
        except BodyInterrupted:
            broke_off = True
        if broke_off or (declared_length is not None and received < declared_length):
            if checksum is not None:
                writer.discard()
                raise InvalidUploadHeader(
                    "body", f"ended after {received} bytes; none were kept (Upload-Checksum)."
                )
            # A chunked body may break off after its last byte: then that was the last part.
            _record(upload, lease, writer.finish(final=start + received == upload.length))
            raise InvalidUploadHeader(
                "body", f"ended after {received} bytes, which were kept: resume at {upload.offset}."
            )
        if checksum is not None and chunk_hash.digest() != checksum.digest:
            writer.discard()
            raise ChecksumMismatch()
        _record(upload, lease, writer.finish(final=start + received == upload.length))
    finally:
        writer.close()


# --- complete ----------------------------------------------------------------------------


def _complete(
    upload: Upload, lease: str, *, upload_id: str, sha256: str | None, actor: Actor
) -> lifecycle.CreatedShare:
    """Move the bytes to the share's storage name, then record the share and the upload's
    completion in one transaction.

    Idempotent up to the commit: if the process dies before it, the bytes are in place and
    the next request (a PATCH at the final offset, or GET) completes the upload again.
    The SHA-256 comes from the request when it carried the whole file; otherwise the file
    is read once more, in chunks, since a hash's state cannot be kept between requests.
    """
    staging.finalize(upload)
    if sha256 is None:
        sha256 = staging.sha256_of_stored(upload.storage_name)
    now = timezone.now()
    with transaction.atomic():
        created = lifecycle.share_create_from_stored(
            storage_name=upload.storage_name,
            size=upload.length,
            sha256=sha256,
            name=upload.name,
            content_type=upload.content_type,
            expires_in=upload.expires_in,
            max_downloads=upload.max_downloads,
            password_hash=upload.password,
            actor=actor,
            owner=upload.owner,
        )
        completed = Upload.objects.filter(
            pk=upload.pk, lease_token=lease, completed_at__isnull=True
        ).update(
            completed_at=now,
            share_id=created.share.pk,
            sealed_manage_token=seal(created.manage_token, upload_id),
            password="",
            tail_size=0,
            expires_at=now + timedelta(seconds=settings.UPLOAD_SESSION_TTL),
        )
        if completed != 1:
            raise _lease_lost()
        UploadPart.objects.filter(upload=upload).delete()
    upload.refresh_from_db()
    logger.info("Upload %s completed as share %s.", upload.pk, created.share.pk)
    return created


# --- terminate and expire ----------------------------------------------------------------


def upload_terminate(*, upload_id: str) -> None:
    """DELETE: remove an upload and its staged bytes (409 while a request writes to it). A
    completed upload is forgotten; its share lives on, ended only through its manage link."""
    upload = upload_get(upload_id=upload_id)
    lease = lease_take(upload)
    try:
        if upload.completed_at is None and not staging.remove(upload):
            raise StorageUnavailable()
    except BaseException:
        lease_release(upload, lease)
        raise
    Upload.objects.filter(pk=upload.pk, lease_token=lease).delete()
    logger.info("Upload %s terminated.", upload.pk)
