"""Every state change of a share: create, claim, revoke, purge.

Views, the API, admin actions, tasks and commands translate their input to one of these
calls and its result (or exception from `exceptions.py`) to their output. Storage I/O stays
outside database transactions: a crash between the two leaves an orphan in one direction or
the other, which the reconciler removes, never a reachable half-file.
"""

import base64
import hashlib
import itertools
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import check_password, make_password
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Q, Sum, Value, When
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from core.celery import enqueue_on_commit

from .clients import OPERATOR, SYSTEM, Actor
from .exceptions import (
    InvalidShareOption,
    PasswordRequired,
    ShareGone,
    ShareNotFound,
    StorageUnavailable,
    TooLarge,
    WrongPassword,
)
from .filenames import clean_content_type, clean_filename
from .models import AbuseReport, JobRun, Share, ShareEvent
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
    actor: Actor = SYSTEM,
    owner: AbstractBaseUser | None = None,
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
    size = file.size
    if owner is not None:
        _check_quota(owner=owner, adding=size)
    sha256 = _sha256_of(file)
    try:
        storage_name = default_storage.save(
            f"{STORAGE_PREFIX}{secrets.token_hex(16)}", file, max_length=255
        )
    except Exception as exc:  # disk full, S3 unreachable: any storage failure
        logger.error("Could not store an upload: %s", exc)
        raise StorageUnavailable() from exc

    manage_token = new_manage_token()
    share_token = share_token_for(manage_token)
    now = timezone.now()
    try:
        with transaction.atomic():
            share = Share.objects.create(
                owner=owner,
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
            _record(share, ShareEvent.Kind.CREATED, actor, at=now)
    except BaseException:
        _delete_bytes(storage_name)
        raise
    logger.info("Share %s created (%s bytes).", share.pk, size)
    return CreatedShare(share=share, share_token=share_token, manage_token=manage_token)


def _check_quota(*, owner: AbstractBaseUser, adding: int) -> None:
    quota = settings.USER_QUOTA_BYTES
    if not quota:
        return
    used = Share.objects.active().filter(owner=owner).aggregate(total=Sum("size"))["total"] or 0
    if used + adding > quota:
        raise TooLarge(
            f"This upload would pass your quota of {filesizeformat(quota)} of active shares "
            f"({filesizeformat(used)} in use). Revoke a share or wait for one to end."
        )


@dataclass(frozen=True)
class SharePage:
    shares: list[Share]
    next_cursor: str | None


def shares_of_owner(
    *, owner: AbstractBaseUser, limit: int = 20, after: str | None = None
) -> SharePage:
    """One owner's shares, newest first, `limit` at a time after an opaque cursor.

    A cursor (the last row's creation time and id) rather than page numbers: pages stay
    stable while new shares arrive, and the query is an index range scan at any depth.
    """
    if not 1 <= limit <= 100:
        raise InvalidShareOption("limit", "must be between 1 and 100.")
    shares = Share.objects.filter(owner=owner).order_by("-created_at", "-pk")
    if after:
        created_at, pk = _decode_cursor(after)
        shares = shares.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    page = list(shares[: limit + 1])
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return SharePage(shares=page[:limit], next_cursor=next_cursor)


def _encode_cursor(share: Share) -> str:
    raw = f"{share.created_at.isoformat()}|{share.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, pk = raw.rsplit("|", 1)
        return datetime.fromisoformat(created_at), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise InvalidShareOption("after", "is not a cursor this service gave out.") from None


def share_get(*, share_token: str) -> Share:
    """The share behind a recipient's link, if a download could still be served."""
    share = Share.objects.filter(share_token_hash=token_hash(share_token)).first()
    if share is None:
        raise ShareNotFound()
    if share.quarantined_at is not None:
        # Neutral on purpose: neither the recipient nor the sender learns of a review here.
        raise ShareGone("This link is not available.")
    if not share.is_available:
        raise ShareGone()
    return share


def share_open(*, share_token: str, actor: Actor) -> Share:
    """share_get, recorded in the timeline as the page being opened (never a download)."""
    share = share_get(share_token=share_token)
    _record(share, ShareEvent.Kind.OPENED, actor)
    return share


def share_get_for_manage(*, manage_token: str) -> Share:
    """The share behind a sender's manage link, whatever its status."""
    share = Share.objects.filter(manage_token_hash=token_hash(manage_token)).first()
    if share is None:
        raise ShareNotFound()
    return share


def share_check_password(*, share: Share, password: str, actor: Actor = SYSTEM) -> None:
    """Raise PasswordRequired or WrongPassword unless the password opens the share."""
    if not share.password:
        return
    if not password:
        raise PasswordRequired()
    if not check_password(password, share.password):
        _record(share, ShareEvent.Kind.WRONG_PASSWORD, actor)
        raise WrongPassword()


def share_authorize(*, share_token: str, password: str = "", actor: Actor = SYSTEM) -> Share:
    """The share behind a link, if it can be downloaded now with this password.

    Raises ShareNotFound, ShareGone, PasswordRequired or WrongPassword; consumes nothing.
    """
    share = share_get(share_token=share_token)
    share_check_password(share=share, password=password, actor=actor)
    return share


def share_claim(*, share_token: str, password: str = "", actor: Actor = SYSTEM) -> Share:
    """Authorize, then take one download (see share_claim_authorized)."""
    share = share_authorize(share_token=share_token, password=password, actor=actor)
    return share_claim_authorized(share=share, actor=actor)


def share_claim_authorized(*, share: Share, actor: Actor = SYSTEM) -> Share:
    """Take one download, exactly: of any number of simultaneous claims on any number of
    processes, at most `max_downloads` succeed; the others raise ShareGone.

    The guarantee is a single conditional UPDATE: the database applies
    `downloads = downloads + 1 WHERE downloads < max_downloads AND ...` under its row lock
    (PostgreSQL) or its write lock (SQLite), so the check and the increment cannot be
    separated by another claim. The password was checked before (share_authorize), outside
    any lock, since Argon2 is slow by design.

    The count is taken when the download starts: a download that breaks off still counts.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = Share.objects.filter(
            pk=share.pk,
            downloads__lt=F("max_downloads"),
            expires_at__gt=now,
            revoked_at__isnull=True,
            purged_at__isnull=True,
            quarantined_at__isnull=True,
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
        _record(share, ShareEvent.Kind.DOWNLOAD_STARTED, actor, at=now)
        if share.consumed_at is not None:
            # The response deletes the bytes when it closes; this is the safety net.
            enqueue_on_commit(
                "apps.shares.tasks.purge_share",
                share.pk,
                countdown=settings.PURGE_AFTER_LAST_DOWNLOAD,
            )
    logger.info("Share %s claimed (%s of %s).", share.pk, share.downloads, share.max_downloads)
    return share


def share_download_finished(*, share_id: int, completed: bool, actor: Actor = SYSTEM) -> None:
    """Record how a download ended; after the last one, delete the bytes."""
    share = Share.objects.filter(pk=share_id).first()
    if share is None:
        return
    kind = ShareEvent.Kind.DOWNLOAD_COMPLETED if completed else ShareEvent.Kind.DOWNLOAD_BROKEN_OFF
    _record(share, kind, actor)
    if share.consumed_at is not None:
        share_purge(share_id=share.pk)


def share_revoke(*, share_id: int, actor: Actor = SYSTEM) -> Share:
    """End a share and delete its bytes. Idempotent; a used-up share stays "consumed"."""
    with transaction.atomic():
        revoked = Share.objects.filter(
            pk=share_id, revoked_at__isnull=True, downloads__lt=F("max_downloads")
        ).update(revoked_at=timezone.now())
        share = Share.objects.get(pk=share_id)
        if revoked:
            _record(share, ShareEvent.Kind.REVOKED, actor)
            enqueue_on_commit("apps.shares.tasks.purge_share", share.pk)
    share_purge(share_id=share.pk)
    share.refresh_from_db()
    return share


def share_purge(*, share_id: int) -> bool:
    """Delete the bytes of an ended share and mark it purged. Idempotent.

    Returns whether bytes were deleted now. Bytes of a share that can still be downloaded,
    or that an operator holds for review, are never touched.
    """
    share = Share.objects.filter(pk=share_id).first()
    if share is None or share.purged_at is not None or share.quarantined_at is not None:
        return False
    if share.status == Share.Status.ACTIVE:
        return False
    if not _delete_bytes(share.storage_name):
        return False
    with transaction.atomic():
        purged = Share.objects.filter(pk=share.pk, purged_at__isnull=True).update(
            purged_at=timezone.now()
        )
        if purged:
            if share.status == Share.Status.EXPIRED:
                _record(share, ShareEvent.Kind.EXPIRED, SYSTEM, at=share.expires_at)
            _record(share, ShareEvent.Kind.PURGED, SYSTEM)
    logger.info("Share %s purged.", share.pk)
    return bool(purged)


@dataclass(frozen=True)
class PurgeResult:
    shares: int
    bytes: int
    rows_deleted: int


def shares_purge(*, dry_run: bool = False) -> PurgeResult:
    """Delete the bytes of every consumed, expired or revoked share still in storage.

    Rows stay, marked purged, for the audit trail; rows purged longer than
    SHARE_RETENTION_DAYS ago are deleted with their events. Safe to run at any time and
    from several places at once: each share is purged by a conditional update.
    """
    shares = total_bytes = 0
    # A share used up moments ago may still be on its way out: with nginx offload, nginx
    # opens the file after the app has answered. Its own purge task, sent with the claim,
    # deletes it PURGE_AFTER_LAST_DOWNLOAD seconds later; this job leaves it until then.
    just_consumed = timezone.now() - timedelta(seconds=settings.PURGE_AFTER_LAST_DOWNLOAD)
    purgeable = Share.objects.purgeable().exclude(consumed_at__gt=just_consumed)
    for share in purgeable.only("pk", "size").iterator():
        if dry_run or share_purge(share_id=share.pk):
            shares += 1
            total_bytes += share.size
    cutoff = timezone.now() - timedelta(days=settings.SHARE_RETENTION_DAYS)
    old_rows = Share.objects.filter(purged_at__lt=cutoff)
    if dry_run:
        rows_deleted = old_rows.count()
    else:
        rows_deleted = old_rows.delete()[1].get("shares.Share", 0)
    result = PurgeResult(shares=shares, bytes=total_bytes, rows_deleted=rows_deleted)
    if not dry_run:
        _job_finished("purge_shares", result)
    return result


@dataclass(frozen=True)
class ReconcileResult:
    orphan_files: int
    orphan_bytes: int
    missing_files: int


def storage_reconcile(*, grace: int | None = None, dry_run: bool = False) -> ReconcileResult:
    """Heal storage and database in both directions after crashes.

    - A file with no row, older than `grace` seconds, is deleted: an upload whose row was
      never committed. The grace period spares uploads between their write and commit.
    - A row whose file is missing is marked purged, so it is never offered again.
    """
    grace = settings.RECONCILE_GRACE_SECONDS if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    orphan_files = orphan_bytes = 0
    for name in _names_without_rows(_stored_names(STORAGE_PREFIX)):
        try:
            if default_storage.get_modified_time(name) > cutoff:
                continue
            size = default_storage.size(name)
        except FileNotFoundError:
            continue  # deleted meanwhile
        if dry_run or _delete_bytes(name):
            orphan_files += 1
            orphan_bytes += size
            logger.info(
                "Reconcile: %s orphan file %s", "would delete" if dry_run else "deleted", name
            )

    missing = 0
    for share in Share.objects.stored().only("pk", "storage_name").iterator():
        if default_storage.exists(share.storage_name):
            continue
        missing += 1
        if not dry_run:
            with transaction.atomic():
                if Share.objects.filter(pk=share.pk, purged_at__isnull=True).update(
                    purged_at=timezone.now()
                ):
                    _record(share, ShareEvent.Kind.PURGED, Actor(agent="reconciler"))
        if dry_run:
            logger.info("Reconcile: share %s has no file; would mark it purged.", share.pk)
        else:
            logger.warning("Reconcile: share %s had no file; marked purged.", share.pk)
    result = ReconcileResult(
        orphan_files=orphan_files, orphan_bytes=orphan_bytes, missing_files=missing
    )
    if not dry_run:
        _job_finished("reconcile_storage", result)
    return result


def shares_stats() -> dict:
    """Counts by status, bytes stored, the oldest active share."""
    oldest = Share.objects.active().order_by("created_at").values("created_at").first()
    return {
        "active": Share.objects.active().count(),
        "consumed": Share.objects.consumed().count(),
        "expired": Share.objects.expired().count(),
        "revoked": Share.objects.revoked().count(),
        "quarantined": Share.objects.quarantined().count(),
        "purged": Share.objects.purged().count(),
        "total": Share.objects.count(),
        "bytes_stored": Share.objects.stored().aggregate(total=Sum("size"))["total"] or 0,
        "oldest_active_created_at": oldest["created_at"] if oldest else None,
    }


def share_report(*, share_token: str, reason: str, note: str = "", actor: Actor) -> AbuseReport:
    """A recipient reports a file to the operators."""
    share = share_get(share_token=share_token)
    if reason not in AbuseReport.Reason.values:
        raise InvalidShareOption("reason", "is not one of the offered reasons.")
    with transaction.atomic():
        report = AbuseReport.objects.create(
            share=share, reason=reason, note=note[:2000], reporter=actor.client
        )
        _record(share, ShareEvent.Kind.REPORTED, actor)
    logger.warning("Share %s reported as %s.", share.pk, reason)
    return report


def share_quarantine(*, share_id: int) -> bool:
    """Hold a share for review: the link answers 410, the bytes are kept."""
    with transaction.atomic():
        held = Share.objects.filter(
            pk=share_id, quarantined_at__isnull=True, purged_at__isnull=True
        ).update(quarantined_at=timezone.now())
        if held:
            _record(Share.objects.get(pk=share_id), ShareEvent.Kind.QUARANTINED, OPERATOR)
    return bool(held)


def share_release(*, share_id: int) -> bool:
    """End a review: the share is what it was before (or purged, if it ended meanwhile)."""
    with transaction.atomic():
        released = Share.objects.filter(pk=share_id, quarantined_at__isnull=False).update(
            quarantined_at=None
        )
        if released:
            _record(Share.objects.get(pk=share_id), ShareEvent.Kind.RELEASED, OPERATOR)
    if released:
        share_purge(share_id=share_id)  # if it ended while held, its bytes go now
    return bool(released)


def share_remove(*, share_id: int, actor: Actor = OPERATOR) -> Share:
    """An operator ends a share for good, even one held for review: lift the hold, revoke,
    delete the bytes."""
    with transaction.atomic():
        if Share.objects.filter(pk=share_id, quarantined_at__isnull=False).update(
            quarantined_at=None
        ):
            _record(Share.objects.get(pk=share_id), ShareEvent.Kind.RELEASED, actor)
    return share_revoke(share_id=share_id, actor=actor)


def report_resolve(*, report_id: int, resolution: str) -> AbuseReport:
    """Close an abuse report, acting on its share: hold it, remove it, or leave it."""
    report = AbuseReport.objects.select_related("share").get(pk=report_id)
    if resolution == AbuseReport.Resolution.QUARANTINED:
        if not share_quarantine(share_id=report.share_id) and report.share.purged_at:
            # Nothing left to hold: the bytes are already gone.
            resolution = AbuseReport.Resolution.DISMISSED
    elif resolution == AbuseReport.Resolution.REMOVED:
        share_remove(share_id=report.share_id, actor=OPERATOR)
    elif resolution != AbuseReport.Resolution.DISMISSED:
        raise InvalidShareOption("resolution", "is not a known resolution.")
    AbuseReport.objects.filter(pk=report.pk).update(
        resolved_at=timezone.now(), resolution=resolution
    )
    report.refresh_from_db()
    return report


def _record(share: Share, kind: str, actor: Actor, *, at: datetime | None = None) -> None:
    ShareEvent.objects.create(
        share=share,
        kind=kind,
        at=at or timezone.now(),
        agent=actor.agent[:64],
        is_bot=actor.is_bot,
        client=actor.client,
    )


def _job_finished(name: str, result: object) -> None:
    JobRun.objects.update_or_create(
        name=name, defaults={"finished_at": timezone.now(), "summary": result.__dict__}
    )


def _names_without_rows(names: Iterator[str], batch_size: int = 500) -> Iterator[str]:
    """The storage names that no share row claims, one query per batch of names."""
    while batch := list(itertools.islice(names, batch_size)):  # itertools.batched: 3.12+
        known = set(
            Share.objects.filter(storage_name__in=batch).values_list("storage_name", flat=True)
        )
        yield from (name for name in batch if name not in known)


def _stored_names(prefix: str) -> Iterator[str]:
    """Every file name under prefix in storage, recursively."""
    try:
        directories, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{prefix}{file_name}"
    for directory in directories:
        yield from _stored_names(f"{prefix}{directory}/")


def _delete_bytes(storage_name: str) -> bool:
    try:
        default_storage.delete(storage_name)
    except Exception as exc:  # any storage failure, local or S3
        # The purge job retries; nothing is offered meanwhile, the share has ended.
        logger.warning("Could not delete %s from storage: %s", storage_name, exc)
        return False
    return True
