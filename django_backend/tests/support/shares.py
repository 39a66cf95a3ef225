"""Shares brought to an end behind the services' back, and the files left on disk."""

from datetime import timedelta
from pathlib import Path

from django.test import Client
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


def page_download(client: Client, path: str, data: dict | None = None, **extra: object):
    """Press Download on a share's page as a browser does: POST, and if the claim succeeded
    follow its 303 to the download session, whose (streaming) response is returned. Any
    other answer to the POST (403 with the password form, 404, 410, 429) is returned as is.
    """
    response = client.post(path, data or {}, **extra)
    location = response.headers.get("Location", "")
    if response.status_code == 303 and location.startswith("/d/"):
        extra.pop("HTTP_ORIGIN", None)
        return client.get(location, **extra)
    return response
