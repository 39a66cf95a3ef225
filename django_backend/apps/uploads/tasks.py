"""Celery tasks: thin wrappers over the services."""

from celery import shared_task

from . import services


@shared_task
def expire_uploads() -> dict:
    """Every minute (with purge_shares): remove the bytes of abandoned uploads."""
    return services.uploads_expire().__dict__
