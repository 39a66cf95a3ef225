"""Reads that are more than a filter: the share behind a link, an owner's page of shares,
the counts operators see."""

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext, pgettext

from .clients import OPERATOR
from .exceptions import InvalidShareOption, ShareGone, ShareNotFound
from .models import Share, ShareEvent
from .tokens import token_hash

MAX_ROW_ID = 2**63 - 1  # the largest primary key any supported database stores
PAGE_LIMIT_MAX = 100  # shares per page of an owner's list, at most


def share_get(*, share_token: str) -> Share:
    """The share behind a recipient's link, if a download could still be served; else
    ShareGone saying in plain words why not (share_gone)."""
    share = Share.objects.filter(share_token_hash=token_hash(share_token)).first()
    if share is None:
        raise ShareNotFound()
    if not share.is_available:
        raise share_gone(share)
    return share


def share_gone(share: Share) -> ShareGone:
    """The ShareGone for a share no download can be served from, its message saying why.

    The recipient reads it on the 410 page and API clients in the error's message, so it
    says what happened and what to do, not a status. In the language active when it is made:
    the reader's on a page, English under /api/.
    """
    if share.quarantined_at is not None:
        # Neutral on purpose: neither the recipient nor the sender learns of a review here,
        # and it may yet be released.
        return ShareGone(gettext("This link is not available."))
    status = share.status
    if status == Share.Status.CONSUMED:
        if share.max_downloads == 1:
            return ShareGone(
                gettext(
                    "This file has already been downloaded, and the link worked only once. If "
                    "it wasn't you who downloaded it, tell the sender: someone else has the file."
                )
            )
        return ShareGone(
            # Translators: never with 1 (that case has a sentence of its own).
            ngettext(
                "This file has already been downloaded %(count)d time, as many as the sender "
                "allowed. If you didn't download it, tell the sender: someone else has the file.",
                "This file has already been downloaded %(count)d times, as many as the sender "
                "allowed. If you didn't download it, tell the sender: someone else has the file.",
                share.max_downloads,
            )
            % {"count": share.max_downloads}
        )
    if status == Share.Status.EXPIRED:
        return ShareGone(
            gettext(
                "This link has expired and the file is deleted. Ask the sender to share it again."
            )
        )
    if status == Share.Status.REVOKED and not _removed_by_operator(share):
        return ShareGone(
            gettext(
                "The sender revoked this link and the file is deleted. Ask the sender if you "
                "still need it."
            )
        )
    # Removed by the operators, or the bytes lost from storage: nothing more to say.
    return ShareGone(gettext("This file is no longer available."))


def _removed_by_operator(share: Share) -> bool:
    return share.events.filter(kind=ShareEvent.Kind.REVOKED, agent=OPERATOR.agent).exists()


def share_get_for_manage(*, manage_token: str) -> Share:
    """The share behind a sender's manage link, whatever its status."""
    share = Share.objects.filter(manage_token_hash=token_hash(manage_token)).first()
    if share is None:
        raise ShareNotFound()
    return share


def share_get_for_owner(*, owner: AbstractBaseUser, share_id: int) -> Share:
    """One of the owner's shares, whatever its status; ShareNotFound for anyone else's."""
    share = Share.objects.filter(pk=share_id, owner=owner).first()
    if share is None:
        raise ShareNotFound(pgettext("shared file", "There is no such share among yours."))
    return share


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
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise InvalidShareOption("limit", f"must be between 1 and {PAGE_LIMIT_MAX}.")
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
        created, row_id = datetime.fromisoformat(created_at), int(pk)
        if created.tzinfo is not None:
            # In UTC, as the database compares it: an offset can carry it past year 9999.
            created = created.astimezone(UTC)
    except (ValueError, UnicodeDecodeError, OverflowError):
        created = row_id = None
    # Well formed but out of range would reach the database and overflow there.
    if created is None or created.tzinfo is None or not 0 <= row_id <= MAX_ROW_ID:
        raise InvalidShareOption("after", "is not a cursor this service gave out.")
    return created, row_id


def shares_stats() -> dict:
    """Counts by state, bytes stored, the oldest active share: one aggregate query."""
    now = timezone.now()
    condition = Share.objects.condition
    stats = Share.objects.aggregate(
        **{
            state.value: Count("pk", filter=condition(state, now))
            for state in (
                Share.State.ACTIVE,
                Share.State.CONSUMED,
                Share.State.EXPIRED,
                Share.State.REVOKED,
                Share.State.QUARANTINED,
                Share.State.PURGED,
            )
        },
        total=Count("pk"),
        bytes_stored=Sum("size", filter=Q(purged_at__isnull=True)),
        oldest_active_created_at=Min("created_at", filter=condition(Share.State.ACTIVE, now)),
    )
    stats["bytes_stored"] = stats["bytes_stored"] or 0
    return stats
