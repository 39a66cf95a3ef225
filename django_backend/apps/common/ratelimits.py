"""Rate limits per client IP, counted by django-ratelimit in the cache (Redis when set).

If the cache is unreachable the limiter fails open (RATELIMIT_FAIL_OPEN): availability
beats throttling for this service, and django-redis logs the failure.
"""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .exceptions import RateLimited


def _usage(request: HttpRequest, scope: str, subject: str, *, increment: bool) -> dict | None:
    return get_usage(
        request,
        group=f"ots.{scope}.{subject}",
        key="ip",
        rate=settings.RATE_LIMITS[scope],
        increment=increment,
    )


def _retry_after(usage: dict) -> int:
    # django-ratelimit's window still includes its last second: a client that waits exactly
    # `time_left` would be refused once more.
    return usage["time_left"] + 1


def count(request: HttpRequest, scope: str, subject: str = "") -> None:
    """Count this request against `scope`'s limit; raise RateLimited once it is passed."""
    usage = _usage(request, scope, subject, increment=True)
    if usage and usage["should_limit"]:
        raise RateLimited(retry_after=_retry_after(usage))


def check(request: HttpRequest, scope: str, subject: str = "") -> None:
    """Raise RateLimited if `scope`'s limit is already used up, without counting."""
    usage = _usage(request, scope, subject, increment=False)
    if usage and usage["count"] >= usage["limit"]:
        raise RateLimited(retry_after=_retry_after(usage))
