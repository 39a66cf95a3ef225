"""Health checks and the project's error pages."""

import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.shares.models import JobRun
from core.celery import app as celery_app

from .errors import error_response

logger = logging.getLogger(__name__)


@require_safe
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: answers whenever the process serves, touching no dependency."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = f"health:{secrets.token_hex(8)}"
    cache.set(key, "ok", timeout=10)
    # django-redis ignores connection errors for the rate limiter's sake; a failed round
    # trip shows here as a missing value.
    if cache.get(key) != "ok":
        raise ConnectionError("the cache did not return what was stored")
    cache.delete(key)


def _check_storage() -> None:
    probe = f"health/{secrets.token_hex(8)}"
    name = default_storage.save(probe, ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as fh:
            if fh.read() != b"ok":
                raise OSError("storage returned other bytes than it was given")
    finally:
        default_storage.delete(name)


def _check_broker() -> None:
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT)


def _check_periodic_jobs() -> None:
    run = JobRun.objects.filter(name="purge_shares").first()
    allowed = timedelta(seconds=3 * settings.PURGE_INTERVAL)
    if run is None:
        raise LookupError("the purge job has not run yet")
    if timezone.now() - run.finished_at > allowed:
        raise TimeoutError(f"the purge job last finished at {run.finished_at:%Y-%m-%dT%H:%M:%SZ}")


CHECK_TIMEOUT = 1.5  # seconds; readiness answers within about that, whatever hangs

# name -> (check, critical, runs in a worker thread). The database checks run on the
# request's own connection; the others in threads, so that one hanging dependency cannot
# hold the answer past CHECK_TIMEOUT. The periodic jobs are reported but not critical: a
# late purge is for the operator to see, not a reason to take the web servers out.
CHECKS: dict[str, tuple[Callable[[], None], bool, bool]] = {
    "database": (_check_database, True, False),
    "cache": (_check_cache, True, True),
    "storage": (_check_storage, True, True),
    "broker": (_check_broker, True, True),
    "periodic_jobs": (_check_periodic_jobs, False, False),
}


def _timed(check: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure of a dependency is a failed check, not a 500
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:200]}
    else:
        result = {"ok": True}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@require_safe
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every critical dependency answers, else 503 naming the failure."""
    results: dict[str, dict] = {}
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="ready")
    futures = {
        name: pool.submit(_timed, check)
        for name, (check, _, threaded) in CHECKS.items()
        if threaded
    }
    for name, (check, _, threaded) in CHECKS.items():
        if threaded:
            continue
        if name != "database" and not results["database"]["ok"]:
            # Every other check on the request's thread reads the database: never wait out
            # an unreachable one twice.
            results[name] = {"ok": False, "error": "skipped: the database is unreachable"}
            results[name]["ms"] = 0.0
            continue
        results[name] = _timed(check)
    deadline = time.monotonic() + CHECK_TIMEOUT
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = {"ok": False, "error": "timed out", "ms": CHECK_TIMEOUT * 1000}
    # Do not wait for a hanging check; its thread ends with its own socket timeout.
    pool.shutdown(wait=False)
    for name, result in results.items():
        result["critical"] = CHECKS[name][1]
        if not result["ok"]:
            logger.warning("Readiness check %s failed: %s", name, result.get("error"))
    healthy = all(r["ok"] for r in results.values() if r["critical"])
    body = {"status": "ok" if healthy else "fail", "checks": dict(sorted(results.items()))}
    return JsonResponse(body, status=200 if healthy else 503)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=400, code="invalid", message="The request could not be understood."
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=403, code="forbidden", message="You are not allowed to do this."
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=404, code="not_found", message="There is nothing at this address."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(
        request, status=500, code="server_error", message="Something went wrong on our side."
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_response(
        request,
        status=403,
        code="forbidden",
        message=(
            "The form had expired or came from another site. Please reload the page and try again."
        ),
    )
