"""Celery tasks: thin wrappers over the services (the expiry job in maintenance)."""

from celery import shared_task

from . import maintenance


@shared_task
def expire_uploads() -> dict:
    """Every minute (with purge_shares): remove the bytes of abandoned uploads."""
    return maintenance.uploads_expire().__dict__
