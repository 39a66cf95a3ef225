"""How the shares' counters tell endings apart, in process: each ended share is counted once,
by how it ended, when its transaction commits. (Adding up across processes is tested through
gunicorn and a Celery worker in test_metrics.py.)

Values are read from this process's own counters, before and after.
"""

from datetime import timedelta

import pytest
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from apps.shares import metrics
from apps.shares.clients import Actor
from apps.shares.models import Share
from apps.shares.services import lifecycle, moderation

pytestmark = pytest.mark.django_db(transaction=True)

HOWS = ("consumed", "expired", "revoked", "removed")


def ended() -> dict[str, float]:
    return {how: metrics.SHARES_ENDED.labels(how)._value.get() for how in HOWS}


def lag_count(how: str) -> float:
    histogram = metrics.DELETION_LAG.labels(how)
    return sum(bucket.get() for bucket in histogram._buckets)


def increase(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {how: after[how] - before[how] for how in HOWS if after[how] != before[how]}


def test_an_operator_removing_a_share_ends_it_as_removed(make_share):
    share = make_share().share
    before = ended()

    moderation.share_remove(share_id=share.pk)

    assert increase(before, ended()) == {"removed": 1}


def test_the_sender_revoking_ends_it_as_revoked_and_its_purge_is_timed_as_such(make_share):
    share = make_share().share
    before, lags = ended(), lag_count("revoked")

    lifecycle.share_revoke(share_id=share.pk, actor=Actor(agent="browser"))
    lifecycle.share_revoke(share_id=share.pk, actor=Actor(agent="browser"))

    assert increase(before, ended()) == {"revoked": 1}
    assert lag_count("revoked") == lags + 1


def test_a_share_revoked_after_it_expired_is_counted_once_as_expired(make_share):
    share = make_share().share
    Share.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    before, lags = ended(), lag_count("expired")

    lifecycle.share_revoke(share_id=share.pk, actor=Actor(agent="browser"))
    lifecycle.share_purge(share_id=share.pk)

    assert increase(before, ended()) == {"expired": 1}
    # Its bytes went five minutes after its end, timed from the expiry.
    assert lag_count("expired") == lags + 1


def test_an_expired_share_purged_then_revoked_is_not_counted_again(make_share):
    share = make_share().share
    Share.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    before = ended()

    assert lifecycle.share_purge(share_id=share.pk)
    lifecycle.share_revoke(share_id=share.pk, actor=Actor(agent="browser"))

    assert increase(before, ended()) == {"expired": 1}


def test_a_share_rolled_back_is_not_counted(tmp_path):
    created = metrics.SHARES_CREATED.labels("command")
    before = created._value.get()
    path = tmp_path / "a.txt"
    path.write_bytes(b"bytes")

    with pytest.raises(RuntimeError), transaction.atomic():
        with path.open("rb") as handle:
            lifecycle.share_create(file=File(handle, name="a.txt"), via="command")
        raise RuntimeError("rolled back")

    assert created._value.get() == before
    with path.open("rb") as handle:
        lifecycle.share_create(file=File(handle, name="a.txt"), via="command")
    assert created._value.get() == before + 1
