"""A share's life: create, open, revoke, purge its bytes. (Claiming a download: claims.)"""

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import check_password, make_password
from django.core.files import File
from django.db import connection, models, transaction
from django.db.models import F, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from core.celery import enqueue_on_commit

from .. import metrics, storage
from ..clients import SYSTEM, Actor
from ..exceptions import (
    InvalidShareOption,
    PasswordRequired,
    TooLarge,
    WrongPassword,
)
from ..filenames import clean_content_type, clean_filename
from ..models import Share, ShareEvent
from ..selectors import share_get
from ..tokens import new_manage_token, share_token_for, token_hash
from .events import share_event_record
from .sessions import share_has_live_session

logger = logging.getLogger(__name__)

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
            gettext("must be between %(minimum)d and %(maximum)d seconds.")
            % {"minimum": settings.MIN_EXPIRES_IN, "maximum": settings.MAX_EXPIRES_IN},
        )
    if not 1 <= max_downloads <= settings.MAX_DOWNLOADS_LIMIT:
        raise InvalidShareOption(
            "max_downloads",
            gettext("must be between 1 and %(maximum)d.")
            % {"maximum": settings.MAX_DOWNLOADS_LIMIT},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidShareOption(
            "password",
            ngettext(
                "must be at most %(maximum)d character long.",
                "must be at most %(maximum)d characters long.",
                MAX_PASSWORD_LENGTH,
            )
            % {"maximum": MAX_PASSWORD_LENGTH},
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
    via: metrics.Via = "command",
) -> CreatedShare:
    """Store the bytes under a random name, then record the share.

    The bytes are written before the row: a crash in between leaves a file with no row,
    which reconcile_storage deletes after its grace period. The reverse order could leave a
    row pointing at nothing, offered to a recipient.
    """
    expires_in = validate_share_options(
        expires_in=expires_in, max_downloads=max_downloads, password=password
    )
    size = file.size
    if owner is not None:
        check_quota(owner=owner, adding=size)
    sha256 = _sha256_of(file)
    storage_name = storage.save_bytes(file)
    try:
        return share_create_from_stored(
            storage_name=storage_name,
            size=size,
            sha256=sha256,
            name=name if name is not None else file.name,
            content_type=content_type,
            expires_in=expires_in,
            max_downloads=max_downloads,
            password_hash=make_password(password) if password else "",
            actor=actor,
            owner=owner,
            via=via,
        )
    except BaseException:
        storage.delete_bytes(storage_name)
        raise


def share_create_from_stored(
    *,
    storage_name: str,
    size: int,
    sha256: str,
    name: str | None,
    content_type: str | None,
    expires_in: int,
    max_downloads: int,
    password_hash: str = "",
    actor: Actor = SYSTEM,
    owner: AbstractBaseUser | None = None,
    via: metrics.Via = "tus",
) -> CreatedShare:
    """Record a share for bytes already in storage under `storage_name` (a name from
    storage.new_name()), such as a resumable upload assembled there.

    The caller has validated the options (validate_share_options) and the quota, and
    decides what becomes of the bytes if this raises: share_create deletes them, a
    resumable upload keeps them to try again.
    """
    display_name = clean_filename(name)
    manage_token = new_manage_token()
    share_token = share_token_for(manage_token)
    now = timezone.now()
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
            password=password_hash,
            max_downloads=max_downloads,
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in),
        )
        share_event_record(share, ShareEvent.Kind.CREATED, actor, at=now)
        metrics.share_created(via=via, size=size)
    logger.info("Share %s created (%s bytes).", share.pk, size)
    return CreatedShare(share=share, share_token=share_token, manage_token=manage_token)


def check_quota(*, owner: AbstractBaseUser, adding: int) -> None:
    """Raise TooLarge if `adding` bytes would take the owner past USER_QUOTA_BYTES of
    active shares."""
    quota = settings.USER_QUOTA_BYTES
    if not quota:
        return
    used = Share.objects.active().filter(owner=owner).aggregate(total=Sum("size"))["total"] or 0
    if used + adding > quota:
        raise TooLarge(
            gettext(
                "This upload would pass your quota of %(quota)s of active shares (%(used)s in "
                "use). Revoke a share or wait for one to end."
            )
            % {"quota": filesizeformat(quota), "used": filesizeformat(used)}
        )


def share_open(*, share_token: str, actor: Actor) -> Share:
    """The share behind a link, recorded in the timeline as the page being opened (never a
    download).

    The landing page is what every recipient and every link-preview bot opens: this is the
    service's hottest path. It runs two statements written once per process (read the
    share by its token hash, insert the event) rather than building them through the ORM
    on every request, which cost more CPU than the database's own work (bench/landing.py,
    docs/benchmarks.md). Whether a share may be shown is decided as everywhere else:
    Share.is_available on the loaded row, then share_get, which raises the error that says
    why not.
    """
    share = _share_by_token_hash(token_hash(share_token))
    if share is None or not share.is_available:
        # Unknown or no longer downloadable: share_get raises ShareNotFound or the
        # ShareGone that says why. Should it return (released from review meanwhile),
        # the share is opened after all.
        share = share_get(share_token=share_token)
    _record_opened(share, actor)
    return share


@dataclass(frozen=True)
class _Statement:
    """SQL written once per process from a model's metadata, for one kind of database. It
    runs through Django's cursor, so that error mapping, query logging and the tests'
    query capture apply as to any query."""

    sql: str
    fields: list[models.Field]
    # (position, the column, its converters): what the ORM applies to fetched values, the
    # backend's (SQLite returns times as text) and the field's own.
    converters: list[tuple[int, models.Expression, list]]

    @functools.cached_property
    def attnames(self) -> list[str]:
        return [field.attname for field in self.fields]


@functools.cache
def _share_by_hash_statement(vendor: str) -> _Statement:
    quote = connection.ops.quote_name
    fields = list(Share._meta.concrete_fields)
    columns = ", ".join(quote(field.column) for field in fields)
    token_column = quote(Share._meta.get_field("share_token_hash").column)
    sql = f"SELECT {columns} FROM {quote(Share._meta.db_table)} WHERE {token_column} = %s"  # noqa: S608 - identifiers from the model
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(Share._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    return _Statement(sql=sql, fields=fields, converters=converters)


def _share_by_token_hash(share_token_hash: str) -> Share | None:
    """The share with this token hash, whatever its status, or None."""
    statement = _share_by_hash_statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [share_token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for position, column, converters in statement.converters:
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    return Share.from_db(connection.alias, statement.attnames, values)


@functools.cache
def _opened_event_statement(vendor: str, *, durable: bool) -> _Statement:
    quote = connection.ops.quote_name
    fields = [field for field in ShareEvent._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    table = quote(ShareEvent._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608 - identifiers from the model
    if vendor == "postgresql" and not durable:
        # The statement is its own transaction (autocommit), and RETURNING runs before its
        # commit: set_config(..., true) turns synchronous_commit off for that transaction
        # only, which is what its commit reads.
        sql += " RETURNING set_config('synchronous_commit', 'off', true)"
    return _Statement(sql=sql, fields=fields, converters=[])


def _record_opened(share: Share, actor: Actor) -> None:
    """The row share_event_record writes, inserted as Model.save() inserts it (each field's
    pre_save and database preparation) without what save() adds around the INSERT: no
    signal listens to ShareEvent, and nothing reads the new row's id.

    On PostgreSQL, outside a transaction, the commit does not wait for the write-ahead log
    to reach the disk (synchronous_commit off, for this one statement): the event is
    visible at once, and a crash of the database server, not of the app, could lose the
    last fraction of a second of "page opened" entries, never a download or a change of
    status. That wait was the page's slowest step (3 to 4 ms of a thread's time, and an
    fdatasync per page view, bench/landing.py). Inside a transaction the INSERT is plain:
    the setting would apply to the caller's whole transaction.
    """
    statement = _opened_event_statement(connection.vendor, durable=connection.in_atomic_block)
    event = ShareEvent(
        share_id=share.pk,
        kind=ShareEvent.Kind.OPENED,
        agent=actor.agent[:64],
        is_bot=actor.is_bot,
        client=actor.client,
    )
    params = [
        field.get_db_prep_save(field.pre_save(event, add=True), connection)
        for field in statement.fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)


def share_check_password(*, share: Share, password: str, actor: Actor = SYSTEM) -> None:
    """Raise PasswordRequired or WrongPassword unless the password opens the share."""
    if not share.password:
        return
    if not password:
        raise PasswordRequired()
    if not check_password(password, share.password):
        share_event_record(share, ShareEvent.Kind.WRONG_PASSWORD, actor)
        raise WrongPassword()


def share_revoke(*, share_id: int, actor: Actor = SYSTEM) -> Share:
    """End a share and delete its bytes. Idempotent; a used-up share stays "consumed"."""
    with transaction.atomic():
        revoked = Share.objects.filter(
            pk=share_id, revoked_at__isnull=True, downloads__lt=F("max_downloads")
        ).update(revoked_at=timezone.now())
        share = Share.objects.get(pk=share_id)
        if revoked:
            share_event_record(share, ShareEvent.Kind.REVOKED, actor)
            metrics.share_revoked(share, actor=actor)
            enqueue_on_commit("apps.shares.tasks.purge_share", share.pk)
    share_purge(share_id=share.pk)
    share.refresh_from_db()
    return share


def share_purge(*, share_id: int, end_sessions: bool = False) -> bool:
    """Delete the bytes of an ended share and mark it purged. Idempotent.

    Returns whether bytes were deleted now. Bytes of a share that can still be downloaded,
    or that an operator holds for review, are never touched; nor, unless `end_sessions`
    (an operator's "purge now"), those a live download session may still fetch.
    """
    share = Share.objects.filter(pk=share_id).first()
    if share is None or share.purged_at is not None or share.quarantined_at is not None:
        return False
    if share.status == Share.Status.ACTIVE:
        return False
    if end_sessions:
        share.download_sessions.filter(ended_at__isnull=True).update(ended_at=timezone.now())
    if share.revoked_at is None and share_has_live_session(share):
        return False  # the one who claimed it may still fetch it; the purge job ends it
    if not storage.delete_bytes(share.storage_name):
        return False
    with transaction.atomic():
        purged = Share.objects.filter(pk=share.pk, purged_at__isnull=True).update(
            purged_at=timezone.now()
        )
        if purged:
            metrics.share_purged(share)
            if share.status == Share.Status.EXPIRED:
                share_event_record(share, ShareEvent.Kind.EXPIRED, SYSTEM, at=share.expires_at)
            share_event_record(share, ShareEvent.Kind.PURGED, SYSTEM)
    logger.info("Share %s purged.", share.pk)
    return bool(purged)
