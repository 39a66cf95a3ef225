"""The timeline: one row per thing that happened to a share."""

from datetime import datetime

from django.utils import timezone

from ..clients import Actor
from ..models import Share, ShareEvent


def share_event_record(
    share: Share, kind: str, actor: Actor, *, at: datetime | None = None
) -> ShareEvent:
    return ShareEvent.objects.create(
        share=share,
        kind=kind,
        at=at or timezone.now(),
        agent=actor.agent[:64],
        is_bot=actor.is_bot,
        client=actor.client,
    )
