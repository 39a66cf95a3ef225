import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import identify_hasher
from django.core.files.base import ContentFile
from django.utils import timezone

from apps.shares import selectors
from apps.shares.exceptions import (
    InvalidShareOption,
    PasswordRequired,
    ShareGone,
    ShareNotFound,
    WrongPassword,
)
from apps.shares.models import Share
from apps.shares.services import claims, lifecycle, maintenance, moderation
from apps.shares.tokens import share_token_for, token_hash
from tests.support.shares import end_share, stored_files

pytestmark = pytest.mark.django_db


def test_create_stores_the_bytes_under_a_random_name_with_their_sha256(make_share, media_root):
    created = make_share(b"payload", name="report.pdf")

    share = created.share
    assert share.name == "report.pdf"
    assert share.size == 7
    assert share.sha256 == hashlib.sha256(b"payload").hexdigest()
    assert share.content_type == "application/pdf"
    assert "report" not in share.storage_name
    assert (media_root / share.storage_name).read_bytes() == b"payload"
    assert created.share_token == share_token_for(created.manage_token)
    assert share.share_token_hash == token_hash(created.share_token)
    assert share.manage_token_hash == token_hash(created.manage_token)


def test_create_uses_the_default_lifetime_and_one_download(make_share, settings):
    settings.DEFAULT_EXPIRES_IN = 3600
    before = timezone.now()

    share = make_share().share

    assert share.max_downloads == 1
    assert before + timedelta(seconds=3600) <= share.expires_at
    assert share.expires_at <= timezone.now() + timedelta(seconds=3600)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_downloads": 0}, "max_downloads"),
        ({"max_downloads": 101}, "max_downloads"),
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 7 * 86400 + 1}, "expires_in"),
        ({"password": "x" * 1025}, "password"),
    ],
)
def test_create_refuses_options_out_of_range_and_stores_nothing(
    make_share, media_root, options, field
):
    with pytest.raises(InvalidShareOption) as excinfo:
        make_share(**options)

    assert excinfo.value.field == field
    assert Share.objects.count() == 0
    assert stored_files(media_root) == []


def test_password_is_stored_as_an_argon2_hash(make_share):
    share = make_share(password="correct horse").share

    assert identify_hasher(share.password).algorithm == "argon2"
    assert "correct horse" not in share.password


def test_claim_counts_and_the_last_one_marks_the_share_consumed(make_share):
    created = make_share(max_downloads=2)

    first = claims.share_claim(share_token=created.share_token, open_bytes=False).share
    assert (first.downloads, first.consumed_at, first.status) == (1, None, "active")

    second = claims.share_claim(share_token=created.share_token, open_bytes=False).share
    assert second.downloads == 2
    assert second.consumed_at is not None
    assert second.status == "consumed"

    with pytest.raises(ShareGone):
        claims.share_claim(share_token=created.share_token, open_bytes=False)
    assert Share.objects.get().downloads == 2


def test_claim_with_an_unknown_token_is_not_found(db):
    with pytest.raises(ShareNotFound):
        claims.share_claim(share_token="A" * 22, open_bytes=False)


def test_missing_or_wrong_password_consumes_nothing(make_share):
    created = make_share(password="s3cret")

    with pytest.raises(PasswordRequired):
        claims.share_claim(share_token=created.share_token, open_bytes=False)
    with pytest.raises(WrongPassword):
        claims.share_claim(share_token=created.share_token, password="guess", open_bytes=False)
    assert Share.objects.get().downloads == 0

    claimed = claims.share_claim(
        share_token=created.share_token, password="s3cret", open_bytes=False
    )
    assert claimed.share.downloads == 1


def test_expired_share_is_gone_before_any_cleanup_runs(make_share):
    created = make_share(expires_in=60)

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        with pytest.raises(ShareGone):
            selectors.share_get(share_token=created.share_token)
        with pytest.raises(ShareGone):
            claims.share_claim(share_token=created.share_token, open_bytes=False)
        assert Share.objects.expired().count() == 1
        assert Share.objects.active().count() == 0
    assert Share.objects.get().downloads == 0


def test_revoke_ends_the_share_and_deletes_its_bytes(make_share, media_root):
    created = make_share()

    share = lifecycle.share_revoke(share_id=created.share.pk)

    assert share.status == "revoked"
    assert share.purged_at is not None
    assert stored_files(media_root) == []
    with pytest.raises(ShareGone):
        claims.share_claim(share_token=created.share_token, open_bytes=False)
    # Revoking again changes nothing and does not fail.
    assert lifecycle.share_revoke(share_id=created.share.pk).revoked_at == share.revoked_at


def test_purge_never_deletes_the_bytes_of_an_available_share(make_share, media_root):
    share = make_share().share

    assert lifecycle.share_purge(share_id=share.pk) is False
    assert (media_root / share.storage_name).exists()


def test_purge_is_idempotent_once_the_bytes_are_gone(make_share, media_root):
    created = make_share()
    end_share(created.share, "consumed")

    assert lifecycle.share_purge(share_id=created.share.pk) is True
    assert lifecycle.share_purge(share_id=created.share.pk) is False
    assert stored_files(media_root) == []


def test_create_from_a_file_without_a_precomputed_hash_hashes_it(db):
    content = b"a" * 200_000
    created = lifecycle.share_create(file=ContentFile(content, name="big.bin"))

    assert created.share.sha256 == hashlib.sha256(content).hexdigest()


def test_the_purge_job_keeps_a_claimed_file_for_its_download_session_then_deletes_it(
    make_share, settings
):
    # The one who claimed it may resume until the window closes (or every byte was served).
    settings.DOWNLOAD_SESSION_TTL = 600
    created = make_share()
    claims.share_claim(share_token=created.share_token, open_bytes=False)

    assert maintenance.shares_purge().shares == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=599)):
        assert maintenance.shares_purge().shares == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        assert maintenance.shares_purge().shares == 1
    share = Share.objects.get()
    assert share.purged_at is not None
    kinds = list(share.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["download_window_closed", "purged"]


def test_the_purge_job_gives_a_last_download_without_a_session_its_grace(make_share, settings):
    # With nginx offload, nginx opens the file after the app has answered; the job must not
    # delete it in between. The share's own task does, PURGE_AFTER_LAST_DOWNLOAD later.
    settings.PURGE_AFTER_LAST_DOWNLOAD = 30
    created = make_share()
    Share.objects.filter(pk=created.share.pk).update(downloads=1, consumed_at=timezone.now())

    assert maintenance.shares_purge().shares == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert maintenance.shares_purge().shares == 1
    assert Share.objects.get().purged_at is not None


def test_claim_opens_the_bytes_before_it_counts_the_download(make_share, media_root):
    created = make_share(content=b"payload")

    claimed = claims.share_claim(share_token=created.share_token)
    try:
        assert claimed.stream.read() == b"payload"
    finally:
        claimed.stream.close()
    assert claimed.share.downloads == 1

    again = make_share(content=b"gone", name="gone.txt", max_downloads=2)
    (media_root / again.share.storage_name).unlink()
    with pytest.raises(ShareGone):
        claims.share_claim(share_token=again.share_token)
    assert Share.objects.get(pk=again.share.pk).downloads == 0


def test_the_status_filters_and_the_loaded_rows_agree(make_share):
    """ShareQuerySet.condition() and Share.states are two spellings of one definition."""
    created = {
        how: make_share(name=f"{how}.txt")
        for how in ("active", "consumed", "expired", "revoked", "held", "purged")
    }
    end_share(created["consumed"].share, "consumed")
    end_share(created["expired"].share, "expired")
    lifecycle.share_revoke(share_id=created["revoked"].share.pk)
    moderation.share_quarantine(share_id=created["held"].share.pk)
    end_share(created["purged"].share, "revoked")
    lifecycle.share_purge(share_id=created["purged"].share.pk)

    seen = set()
    for share in Share.objects.all():
        for state in Share.State.values:
            matches = Share.objects.in_state(state).filter(pk=share.pk).exists()
            assert matches == (state in share.states), (share.name, state)
        seen.update(share.states)
    assert seen == set(Share.State.values)
