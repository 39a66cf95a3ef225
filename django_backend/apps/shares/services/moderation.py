"""What recipients and operators do about a file that should not be shared: report it,
hold it for review, release it, remove it, resolve the report."""

import logging

from django.db import transaction
from django.utils import timezone

from ..clients import OPERATOR, Actor
from ..exceptions import InvalidShareOption
from ..models import AbuseReport, Share, ShareEvent
from ..selectors import share_get
from .events import share_event_record
from .lifecycle import share_purge, share_revoke

logger = logging.getLogger(__name__)


def share_report(*, share_token: str, reason: str, note: str = "", actor: Actor) -> AbuseReport:
    """A recipient reports a file to the operators."""
    share = share_get(share_token=share_token)
    if reason not in AbuseReport.Reason.values:
        raise InvalidShareOption("reason", "is not one of the offered reasons.")
    with transaction.atomic():
        report = AbuseReport.objects.create(
            share=share, reason=reason, note=note[:2000], reporter=actor.client
        )
        share_event_record(share, ShareEvent.Kind.REPORTED, actor)
    logger.warning("Share %s reported as %s.", share.pk, reason)
    return report


def share_quarantine(*, share_id: int) -> bool:
    """Hold a share for review: the link answers 410, the bytes are kept."""
    with transaction.atomic():
        held = Share.objects.filter(
            pk=share_id, quarantined_at__isnull=True, purged_at__isnull=True
        ).update(quarantined_at=timezone.now())
        if held:
            share = Share.objects.get(pk=share_id)
            share_event_record(share, ShareEvent.Kind.QUARANTINED, OPERATOR)
    return bool(held)


def share_release(*, share_id: int) -> bool:
    """End a review: the share is what it was before (or purged, if it ended meanwhile)."""
    with transaction.atomic():
        released = Share.objects.filter(pk=share_id, quarantined_at__isnull=False).update(
            quarantined_at=None
        )
        if released:
            share = Share.objects.get(pk=share_id)
            share_event_record(share, ShareEvent.Kind.RELEASED, OPERATOR)
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
            share_event_record(Share.objects.get(pk=share_id), ShareEvent.Kind.RELEASED, actor)
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
