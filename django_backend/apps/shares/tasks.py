"""Celery tasks: thin, idempotent wrappers over the services. They take ids, not objects."""

from celery import shared_task

from .services import lifecycle, maintenance


@shared_task
def purge_share(share_id: int) -> bool:
    """Delete one ended share's bytes (the request already tried; this is the net)."""
    return lifecycle.share_purge(share_id=share_id)


@shared_task
def purge_shares() -> dict:
    """Every minute: delete the bytes of every consumed, expired or revoked share."""
    return maintenance.shares_purge().__dict__


@shared_task
def reconcile_storage() -> dict:
    """Every hour: delete orphan files, mark rows whose file is missing as purged."""
    return maintenance.storage_reconcile().__dict__
