"""The shares app's figures for /metrics (apps.common.metrics serves them).

Counters are bumped by one-line calls from the services, where the thing happens. What
belongs to a transaction (a share created, ended, purged) is counted once it commits, so
that a rolled-back share is never counted; every count is made once, by the one process
that did the thing, and the scrape adds up all processes (multiprocess mode). What is in
the database now (active shares, stored bytes, when the periodic jobs last finished) is
read at scrape time by SharesCollector, registered from SharesConfig.ready().

docs/operations.md lists the metrics and the alerts worth having on them.
"""

import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Literal, ParamSpec, TypeVar

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from apps.common.exceptions import ServiceError

from .clients import OPERATOR, Actor
from .models import JobRun, Share

P = ParamSpec("P")
T = TypeVar("T")

# How a file arrived: the upload page, the API's multipart POST, its PUT (curl -T), the
# create_share command, a resumable (tus) upload.
Via = Literal["page", "api", "put", "command", "tus"]
VIAS: tuple[Via, ...] = ("page", "api", "put", "command", "tus")
# Why a claim was refused: the API's error codes.
REFUSALS = ("gone", "not_found", "wrong_password", "password_required", "rate_limited")
# How a share ended: its last download taken, its time up, revoked by its sender, removed
# by an operator.
ENDINGS = ("consumed", "expired", "revoked", "removed")
# When the bytes of a share can be gone after it ended: within a purge interval (a minute)
# for an expired or revoked share, at once when a download completes, or up to
# DOWNLOAD_SESSION_TTL (an hour) when a download was broken off and its window had to close.
DELETION_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)

SHARES_CREATED = Counter(
    "onetimeshare_shares_created", "Shares created, by how the file arrived.", ["via"]
)
UPLOADED_BYTES = Counter(
    "onetimeshare_uploaded_bytes", "Bytes of the shares created, by how they arrived.", ["via"]
)
CLAIMS_GRANTED = Counter("onetimeshare_claims_granted", "Downloads claimed (counted).")
CLAIMS_REFUSED = Counter(
    "onetimeshare_claims_refused",
    "Download claims refused, by reason (the API's error code); nothing was counted.",
    ["reason"],
)
SERVED_BYTES = Counter(
    "onetimeshare_served_bytes",
    "Bytes of shared files sent by the app, as far as each response got before it closed "
    "(not those nginx sends with DOWNLOAD_OFFLOAD=nginx).",
)
SHARES_ENDED = Counter(
    "onetimeshare_shares_ended",
    "Shares ended, by how: consumed, expired, revoked (by the sender), removed (by an operator).",
    ["how"],
)
DELETED_BYTES = Counter("onetimeshare_deleted_bytes", "Bytes of ended shares deleted from storage.")
DELETION_LAG = Histogram(
    "onetimeshare_deletion_lag_seconds",
    "Seconds from a share's end (consumed_at, expires_at, revoked_at) to its bytes being "
    "deleted, by how it ended (consumed, expired, revoked).",
    ["how"],
    buckets=DELETION_LAG_BUCKETS,
)

# Every label value exists from the start, at 0: a first refusal or a first expiry is an
# increase that rate() and alerts see, not a series appearing.
for _via in VIAS:
    SHARES_CREATED.labels(_via)
    UPLOADED_BYTES.labels(_via)
for _reason in REFUSALS:
    CLAIMS_REFUSED.labels(_reason)
for _how in ENDINGS:
    SHARES_ENDED.labels(_how)
for _how in ("consumed", "expired", "revoked"):
    DELETION_LAG.labels(_how)


def share_created(*, via: Via, size: int) -> None:
    """A share was recorded (counted when its transaction commits)."""

    def count() -> None:
        SHARES_CREATED.labels(via).inc()
        UPLOADED_BYTES.labels(via).inc(size)

    transaction.on_commit(count)


def counts_claims(claim: Callable[P, T]) -> Callable[P, T]:
    """Count each call of `claim` as a claim granted, or as refused for the reason its
    ServiceError gives (its API error code)."""

    @functools.wraps(claim)
    def counted(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            claimed = claim(*args, **kwargs)
        except ServiceError as exc:
            CLAIMS_REFUSED.labels(exc.code).inc()
            raise
        CLAIMS_GRANTED.inc()
        return claimed

    return counted


def bytes_served(sent: int) -> None:
    """A response of a download session closed, having sent `sent` bytes of the file."""
    SERVED_BYTES.inc(sent)


def last_download_taken() -> None:
    """A claim took a share's last download: it ended, consumed."""
    _ended("consumed")


def share_revoked(share: Share, *, actor: Actor) -> None:
    """`share` was revoked just now by `actor` (its sender, or an operator removing it)."""
    if share.revoked_at is not None and share.expires_at <= share.revoked_at:
        # It had ended already, by expiry. Its purge reads "revoked" from now on and counts
        # nothing: that expiry is counted here, unless a purge already counted it.
        if share.purged_at is None:
            _ended("expired")
        return
    _ended("removed" if actor.agent == OPERATOR.agent else "revoked")


def share_purged(share: Share) -> None:
    """The bytes of `share` (as loaded before its purge) were deleted just now: count them
    and the time since the share ended, and its end if that was an expiry noticed now."""
    now = timezone.now()
    ending = _ending(share, now)

    def count() -> None:
        DELETED_BYTES.inc(share.size)
        if ending is not None:
            how, ended_at = ending
            DELETION_LAG.labels(how).observe(max(0.0, (now - ended_at).total_seconds()))

    transaction.on_commit(count)
    # An expiry happens by itself; the purge is where the service first sees it.
    if share.status == Share.Status.EXPIRED:
        _ended("expired")


def _ended(how: str) -> None:
    transaction.on_commit(lambda: SHARES_ENDED.labels(how).inc())


def _ending(share: Share, now: datetime) -> tuple[str, datetime] | None:
    """How the share ended and when: the earliest of its revocation, its last download and
    its expiry (a share can be revoked after it expired)."""
    endings = []
    if share.revoked_at is not None:
        endings.append((share.revoked_at, "revoked"))
    if share.consumed_at is not None:
        endings.append((share.consumed_at, "consumed"))
    if share.expires_at <= now:
        endings.append((share.expires_at, "expired"))
    if not endings:
        return None
    ended_at, how = min(endings)
    return how, ended_at


class SharesCollector:
    """What the database holds now, read at each scrape: one aggregate query over the
    shares that still hold bytes, and the periodic jobs' last runs."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        stored = Share.objects.stored().aggregate(
            active=Count("pk", filter=Share.objects.condition(Share.State.ACTIVE, now)),
            shares=Count("pk"),
            size=Sum("size", default=0),
        )
        yield GaugeMetricFamily(
            "onetimeshare_active_shares",
            "Shares a recipient could download now.",
            value=stored["active"],
        )
        yield GaugeMetricFamily(
            "onetimeshare_stored_shares",
            "Shares whose bytes are in storage (active, ended but not yet purged, held for "
            "review).",
            value=stored["shares"],
        )
        yield GaugeMetricFamily(
            "onetimeshare_stored_bytes",
            "Bytes of the shares whose bytes are in storage.",
            value=stored["size"],
        )
        jobs = GaugeMetricFamily(
            "onetimeshare_job_last_finished_timestamp_seconds",
            "When each periodic job (purge_shares, reconcile_storage) last finished, as a Unix "
            "time.",
            labels=["job"],
        )
        for name, finished_at in JobRun.objects.values_list("name", "finished_at"):
            jobs.add_metric([name], finished_at.timestamp())
        yield jobs
