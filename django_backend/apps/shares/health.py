"""The shares app's readiness check: its periodic jobs ran recently."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import JobRun


def check_periodic_jobs() -> None:
    """Raise unless the purge job finished within three of its intervals."""
    run = JobRun.objects.filter(name="purge_shares").first()
    allowed = timedelta(seconds=3 * settings.PURGE_INTERVAL)
    if run is None:
        raise LookupError("the purge job has not run yet")
    if timezone.now() - run.finished_at > allowed:
        raise TimeoutError(f"the purge job last finished at {run.finished_at:%Y-%m-%dT%H:%M:%SZ}")
