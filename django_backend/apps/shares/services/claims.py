"""Claiming a download: authorize, open the bytes, take the download, open its session."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from core.celery import enqueue_on_commit

from .. import metrics, storage
from ..clients import SYSTEM, Actor
from ..exceptions import ShareGone
from ..models import Share, ShareEvent
from ..selectors import share_get
from .events import share_event_record
from .lifecycle import share_check_password
from .sessions import session_open

logger = logging.getLogger(__name__)


@dataclass
class ClaimedShare:
    """One download taken: the share as counted, its bytes opened for reading (None when
    the caller serves them by other means: a redirect to the session, nginx offload), and
    the secret of the download session the claim opened (see services.sessions)."""

    share: Share
    stream: File | None
    session_token: str


def share_claim(
    *, share_token: str, password: str = "", actor: Actor = SYSTEM, open_bytes: bool = True
) -> ClaimedShare:
    """Authorize, open the bytes, then take one download, in that order.

    - The password is checked first, outside any lock, since Argon2 is slow by design.
    - The bytes are opened before the download is counted, so a storage failure costs the
      recipient nothing (with `open_bytes=False` their existence is checked instead).
    - The count is exact: of any number of simultaneous claims on any number of processes,
      at most `max_downloads` succeed, the others raise ShareGone (see _take_download).

    The count is taken when the download starts: a download that breaks off still counts.
    Raises ShareNotFound, ShareGone, PasswordRequired, WrongPassword or StorageUnavailable;
    nothing is consumed when it raises.
    """
    share = share_get(share_token=share_token)
    share_check_password(share=share, password=password, actor=actor)
    stream = _open_for_download(share) if open_bytes else None
    if not open_bytes and not storage.bytes_exist(share.storage_name):
        _raise_missing(share)
    try:
        share, session_token = _take_download(share, actor)
    except BaseException:
        if stream is not None:
            stream.close()
        raise
    return ClaimedShare(share=share, stream=stream, session_token=session_token)


def _open_for_download(share: Share) -> File:
    try:
        return storage.open_bytes(share.storage_name)
    except FileNotFoundError:
        _raise_missing(share)


def _raise_missing(share: Share) -> None:
    share.refresh_from_db()
    if share.is_available:
        # Bytes lost behind our back: the reconciler marks such rows purged.
        logger.error("Share %s has no bytes in storage.", share.pk)
    # Otherwise this request lost a race: the last download deleted the bytes after this
    # one was authorized. Either way nothing is counted.
    raise ShareGone()


def _take_download(share: Share, actor: Actor) -> tuple[Share, str]:
    """The claim itself, and the download session it opens, in one transaction.

    The share row is taken with select_for_update() (on SQLite the transaction is
    IMMEDIATE: it holds the database's write lock from its start), and the count is one
    conditional UPDATE on the rows ShareQuerySet.active() means, `downloads = downloads + 1
    WHERE downloads < max_downloads AND ...`: of any number of simultaneous claims on any
    number of processes, at most max_downloads succeed.
    """
    now = timezone.now()
    with transaction.atomic():
        active = Share.objects.filter(pk=share.pk).filter(
            Share.objects.condition(Share.State.ACTIVE, now)
        )
        if not active.select_for_update().exists():
            raise ShareGone()
        claimed = active.update(
            downloads=F("downloads") + 1,
            # SET expressions see the row as it was before the update.
            consumed_at=Case(
                When(downloads=F("max_downloads") - 1, then=Value(now)),
                default=F("consumed_at"),
            ),
        )
        if claimed != 1:
            raise ShareGone()
        share.refresh_from_db()
        share_event_record(share, ShareEvent.Kind.DOWNLOAD_STARTED, actor, at=now)
        _session, session_token = session_open(share=share, actor=actor)
        if share.consumed_at is not None:
            metrics.last_download_taken()
            # The bytes go once the session has served them, or when its window closes
            # (the purge job); this task is the net, and leaves a live session alone.
            enqueue_on_commit(
                "apps.shares.tasks.purge_share",
                share.pk,
                countdown=settings.PURGE_AFTER_LAST_DOWNLOAD,
            )
    logger.info("Share %s claimed (%s of %s).", share.pk, share.downloads, share.max_downloads)
    return share, session_token
