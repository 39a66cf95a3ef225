"""Download sessions: what a claim gives the one who took the download.

The count is taken when the download starts (the safe reading of one-time), so a download
that breaks off would leave the recipient with nothing. A session fixes that without
reopening the share: for DOWNLOAD_SESSION_TTL seconds its secret URL serves the file again,
in ranges, so a browser's Resume or `curl -C -` picks up where the connection dropped.

Bounds: each request reserves the bytes it will send from a budget of about twice the
file's size, and at most DOWNLOAD_SESSION_MAX_REQUESTS run at once. The session row is
taken with select_for_update() inside transaction.atomic() for every change (on SQLite the
IMMEDIATE transaction serializes writers the same way). The file is delivered when every
byte was served at least once: the timeline says so and the bytes are deleted. If the
window closes first, the purge job ends the session, the timeline says that, and the bytes
go then.
"""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.common.exceptions import RateLimited

from .. import metrics
from ..clients import Actor
from ..exceptions import ShareGone, ShareNotFound
from ..models import DownloadSession, Share, ShareEvent
from ..tokens import token_hash
from .events import share_event_record

logger = logging.getLogger(__name__)

# Total bytes a session may send, as a multiple of the file's size: room for a few resumes
# and a download manager's overlapping ranges, not for serving the file again and again.
BYTES_BUDGET_FACTOR = 2
# Seconds a client is asked to wait when all of a session's request slots are busy.
BUSY_RETRY_AFTER = 5


class SessionUsedUp(ShareGone):
    default_message = _(
        "This download link has served its allowance. Ask the sender to share the file again."
    )


def session_open(*, share: Share, actor: Actor) -> tuple[DownloadSession, str]:
    """A new session for a download just taken; called inside the claim's transaction.
    Returns the session and its token, which exists only in the caller's response."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    session = DownloadSession.objects.create(
        share=share,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.DOWNLOAD_SESSION_TTL),
        agent=actor.agent[:64],
        client=actor.client,
    )
    return session, token


def session_get(*, session_token: str) -> DownloadSession:
    """A live session and its share, for a HEAD or the headers of a request."""
    session = (
        DownloadSession.objects.select_related("share")
        .filter(token_hash=token_hash(session_token))
        .first()
    )
    if session is None:
        raise ShareNotFound(gettext("There is no download at this link."))
    _check_live(session)
    return session


def _check_live(session: DownloadSession) -> None:
    if session.completed_at is not None:
        raise ShareGone(gettext("This file was downloaded in full; the link has done its work."))
    if not session.is_live:
        raise ShareGone(
            gettext("This download link has expired. Ask the sender to share the file again.")
        )
    share = session.share
    if share.purged_at is not None or share.revoked_at is not None:
        raise ShareGone(gettext("The sender revoked this file; it is gone."))
    if share.quarantined_at is not None:
        raise ShareGone(gettext("This link is not available."))


@dataclass(frozen=True)
class SessionRequest:
    """One request of a session: the bytes [start, start + length) it reserved."""

    session_id: int
    share: Share
    lease: str
    start: int
    length: int


def session_request_begin(*, session_token: str, start: int, length: int) -> SessionRequest:
    """Reserve [start, start + length) of a live session's budget and a request slot.

    Raises ShareNotFound, ShareGone (ended, expired, revoked, used up) or RateLimited
    (every slot busy). Nothing is reserved when it raises.
    """
    with transaction.atomic():
        session = (
            DownloadSession.objects.select_for_update()
            .select_related("share")
            .filter(token_hash=token_hash(session_token))
            .first()
        )
        if session is None:
            raise ShareNotFound(gettext("There is no download at this link."))
        _check_live(session)
        if session.bytes_served + length > BYTES_BUDGET_FACTOR * max(session.share.size, 1):
            raise SessionUsedUp()
        if len(session.open_requests) >= settings.DOWNLOAD_SESSION_MAX_REQUESTS:
            raise RateLimited(retry_after=BUSY_RETRY_AFTER)
        lease = uuid.uuid4().hex
        session.open_requests[lease] = timezone.now().isoformat()
        session.bytes_served += length
        session.save(update_fields=["open_requests", "bytes_served"])
    return SessionRequest(
        session_id=session.pk, share=session.share, lease=lease, start=start, length=length
    )


def session_request_end(*, request: SessionRequest, sent: int, actor: Actor) -> bool:
    """Settle a request that sent `sent` bytes from its start; whether the file is now
    delivered (every byte served at least once), in which case the bytes are deleted."""
    from .lifecycle import share_purge  # lifecycle opens sessions: import at call time

    sent = max(0, min(sent, request.length))
    metrics.bytes_served(sent)
    with transaction.atomic():
        session = DownloadSession.objects.select_for_update().get(pk=request.session_id)
        session.open_requests.pop(request.lease, None)
        session.bytes_served -= request.length - sent
        if sent:
            session.served_ranges = _merge(
                session.served_ranges, (request.start, request.start + sent)
            )
        delivered = session.completed_at is None and _covers(
            session.served_ranges, request.share.size
        )
        if delivered:
            session.completed_at = session.ended_at = timezone.now()
            share_event_record(request.share, ShareEvent.Kind.DOWNLOAD_COMPLETED, actor)
        elif sent < request.length and request.length:
            share_event_record(request.share, ShareEvent.Kind.DOWNLOAD_BROKEN_OFF, actor)
        session.save(
            update_fields=[
                "open_requests",
                "bytes_served",
                "served_ranges",
                "completed_at",
                "ended_at",
            ]
        )
    if delivered:
        share_purge(share_id=request.share.pk)
    return delivered


def session_request_handed_off(*, request: SessionRequest) -> None:
    """Release the slot of a request that another server (nginx) serves: its bytes stay
    counted against the budget, and the session cannot learn that it completed, so its
    share's bytes are kept until the window closes."""
    with transaction.atomic():
        session = DownloadSession.objects.select_for_update().get(pk=request.session_id)
        session.open_requests.pop(request.lease, None)
        session.save(update_fields=["open_requests"])


def sessions_end_expired() -> int:
    """End every session whose window has passed, saying so in the timeline (a completed
    session has ended already). The purge job calls this first, then deletes the bytes
    that were kept for them with every other ended share's."""
    ended = 0
    now = timezone.now()
    expired = DownloadSession.objects.filter(ended_at__isnull=True, expires_at__lte=now)
    for session_id in expired.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            session = (
                DownloadSession.objects.select_for_update()
                .select_related("share")
                .filter(pk=session_id, ended_at__isnull=True)
                .first()
            )
            if session is None:
                continue  # ended meanwhile
            session.ended_at = now
            session.save(update_fields=["ended_at"])
            share_event_record(
                session.share,
                ShareEvent.Kind.DOWNLOAD_WINDOW_CLOSED,
                Actor(agent=session.agent, client=session.client),
                at=session.expires_at,
            )
        ended += 1
    return ended


def share_has_live_session(share: Share) -> bool:
    """Whether a download session may still fetch the share's bytes."""
    return share.download_sessions.filter(
        ended_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def _merge(ranges: list[list[int]], new: tuple[int, int]) -> list[list[int]]:
    """Merge [start, end) into sorted, disjoint ranges (adjacent ones join)."""
    merged: list[list[int]] = []
    start, end = new
    for low, high in sorted([*ranges, [start, end]]):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _covers(ranges: list[list[int]], size: int) -> bool:
    return size == 0 or (len(ranges) == 1 and ranges[0][0] == 0 and ranges[0][1] >= size)
