"""Shares brought to an end behind the services' back, and the files left on disk."""

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from apps.shares.models import Share


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def end_share(share: Share, how: str) -> None:
    """Bring a share to an ended state in the database only, as time or a claim would.

    Through the ORM, not the services: those would purge the bytes themselves (or enqueue
    a purge), and the purge under test would have nothing left to do.
    """
    now = timezone.now()
    changes = {
        # Used up an hour ago: past the grace the purge job gives a last download.
        "consumed": {"downloads": share.max_downloads, "consumed_at": now - timedelta(hours=1)},
        "expired": {"expires_at": now - timedelta(minutes=1)},
        "revoked": {"revoked_at": now},
    }[how]
    Share.objects.filter(pk=share.pk).update(**changes)
