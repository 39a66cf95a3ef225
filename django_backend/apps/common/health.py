"""The readiness checks: the dependencies every app has, and a registry for the others.

Feature apps add their own checks from their AppConfig.ready() (the shares app reports
whether its periodic jobs ran), so that this ground floor needs to know none of them.
"""

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from core.celery import app as celery_app

CHECK_TIMEOUT = 1.5  # seconds; readiness answers within about that, whatever hangs


@dataclass(frozen=True)
class Check:
    """One dependency to check. `critical`: a failure takes the process out of service.
    `threaded`: run in a worker thread, so that a hanging dependency cannot hold the answer
    past CHECK_TIMEOUT; checks that read the database run on the request's own connection
    instead (and are skipped when the database check failed)."""

    run: Callable[[], None]
    critical: bool = True
    threaded: bool = True
    uses_database: bool = False


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


CHECKS: dict[str, Check] = {
    "database": Check(_check_database, threaded=False, uses_database=True),
    "cache": Check(_check_cache),
    "storage": Check(_check_storage),
    "broker": Check(_check_broker),
}


def register_check(name: str, check: Check) -> None:
    """Add a readiness check (from an AppConfig.ready())."""
    CHECKS[name] = check


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


def run_checks() -> dict[str, dict]:
    """Every check's result, {"ok", "ms", "critical"[, "error"]}, within CHECK_TIMEOUT."""
    results: dict[str, dict] = {}
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="ready")
    futures = {
        name: pool.submit(_timed, check.run) for name, check in CHECKS.items() if check.threaded
    }
    for name, check in CHECKS.items():
        if check.threaded:
            continue
        if name != "database" and not results["database"]["ok"]:
            # Never wait out an unreachable database twice.
            results[name] = {"ok": False, "error": "skipped: the database is unreachable"}
            results[name]["ms"] = 0.0
            continue
        results[name] = _timed(check.run)
    deadline = time.monotonic() + CHECK_TIMEOUT
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = {"ok": False, "error": "timed out", "ms": CHECK_TIMEOUT * 1000}
    # Do not wait for a hanging check; its thread ends with its own socket timeout.
    pool.shutdown(wait=False)
    for name, result in results.items():
        result["critical"] = CHECKS[name].critical
    return dict(sorted(results.items()))
