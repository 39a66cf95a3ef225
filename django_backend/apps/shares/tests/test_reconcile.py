"""storage_reconcile heals the two crash windows between storage and database.

Each window is set up for real on disk: a file written where share_create writes it but
with no row (the process died before the row committed), and a row whose file is gone
(deleted by hand, as a lost disk or an operator would). File ages are set with os.utime.
"""

import logging
import os
import secrets
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.shares import storage
from apps.shares.models import JobRun, Share, ShareEvent
from apps.shares.services import maintenance
from tests.support.shares import page_download, stored_files

pytestmark = pytest.mark.django_db

GRACE = 3600


def write_orphan(media_root: Path, content: bytes, *, age: float) -> Path:
    """Bytes stored as share_create stores them, whose row never committed, `age` s old."""
    name = default_storage.save(
        f"{storage.STORAGE_PREFIX}{secrets.token_hex(16)}", ContentFile(content)
    )
    path = media_root / name
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def lose_file(media_root: Path, share: Share) -> None:
    (media_root / share.storage_name).unlink()


def snapshot() -> tuple[list[dict], list[dict]]:
    return (
        list(Share.objects.order_by("pk").values()),
        list(ShareEvent.objects.order_by("pk").values()),
    )


def test_orphan_file_older_than_the_grace_period_is_deleted(media_root):
    orphan = write_orphan(media_root, b"never committed", age=GRACE + 60)

    result = maintenance.storage_reconcile(grace=GRACE)

    assert not orphan.exists()
    assert result == maintenance.ReconcileResult(
        orphan_files=1, orphan_bytes=len(b"never committed"), missing_files=0
    )


def test_orphan_file_younger_than_the_grace_period_is_kept(media_root):
    # An upload between writing its bytes and committing its row looks just like this.
    in_flight = write_orphan(media_root, b"row about to commit", age=GRACE - 60)

    result = maintenance.storage_reconcile(grace=GRACE)

    assert in_flight.read_bytes() == b"row about to commit"
    assert result.orphan_files == 0


def test_file_of_a_share_is_never_taken_for_an_orphan_however_old(make_share, media_root):
    share = make_share(b"has a row").share
    path = media_root / share.storage_name
    long_ago = time.time() - 30 * 86400
    os.utime(path, (long_ago, long_ago))

    result = maintenance.storage_reconcile(grace=0)

    assert path.read_bytes() == b"has a row"
    assert result == maintenance.ReconcileResult(orphan_files=0, orphan_bytes=0, missing_files=0)


def test_download_of_a_share_whose_file_was_lost_answers_410_and_counts_nothing(
    client, make_share, media_root
):
    created = make_share(b"lost")
    lose_file(media_root, created.share)

    api = client.post(f"/api/v1/shares/{created.share_token}/download")
    page = page_download(client, f"/s/{created.share_token}")

    assert api.status_code == 410
    assert api.json()["error"]["code"] == "gone"
    assert page.status_code == 410
    created.share.refresh_from_db()
    assert created.share.downloads == 0


def test_share_whose_file_was_lost_is_marked_purged_and_its_links_answer_410(
    client, make_share, media_root
):
    created = make_share(b"lost")
    intact = make_share(b"still here").share
    lose_file(media_root, created.share)

    result = maintenance.storage_reconcile(grace=GRACE)

    assert result == maintenance.ReconcileResult(orphan_files=0, orphan_bytes=0, missing_files=1)
    share = created.share
    share.refresh_from_db()
    assert share.purged_at is not None
    assert share.events.filter(kind=ShareEvent.Kind.PURGED, agent="reconciler").count() == 1
    intact.refresh_from_db()
    assert intact.purged_at is None
    token = created.share_token
    assert client.get(f"/s/{token}").status_code == 410
    assert page_download(client, f"/s/{token}").status_code == 410
    download = client.post(f"/api/v1/shares/{token}/download")
    assert download.status_code == 410
    assert download.json()["error"]["code"] == "gone"
    assert client.get(f"/api/v1/shares/{token}").status_code == 410


def test_dry_run_changes_nothing_but_reports_what_it_would_do(make_share, media_root):
    old_orphan = write_orphan(media_root, b"old orphan", age=GRACE + 60)
    lost = make_share(b"lost").share
    lose_file(media_root, lost)
    files_before = {path: path.read_bytes() for path in stored_files(media_root)}
    rows_before = snapshot()

    result = maintenance.storage_reconcile(grace=GRACE, dry_run=True)

    assert result == maintenance.ReconcileResult(
        orphan_files=1, orphan_bytes=len(b"old orphan"), missing_files=1
    )
    assert old_orphan in files_before
    assert {path: path.read_bytes() for path in stored_files(media_root)} == files_before
    assert snapshot() == rows_before
    assert not JobRun.objects.filter(name="reconcile_storage").exists()


def test_dry_run_does_not_log_that_it_marked_a_share_purged(make_share, media_root, caplog):
    lost = make_share(b"lost").share
    lose_file(media_root, lost)
    write_orphan(media_root, b"old orphan", age=GRACE + 60)

    with caplog.at_level(logging.INFO, logger="apps.shares.services"):
        maintenance.storage_reconcile(grace=GRACE, dry_run=True)

    reconcile_lines = [r.getMessage() for r in caplog.records if "Reconcile" in r.getMessage()]
    assert len(reconcile_lines) == 2
    # What a dry run only would do must not read, in the log, as done.
    assert not [line for line in reconcile_lines if "marked purged" in line], reconcile_lines


def test_running_twice_changes_nothing_the_second_time(make_share, media_root):
    write_orphan(media_root, b"old orphan", age=GRACE + 60)
    young = write_orphan(media_root, b"young orphan", age=10)
    lost = make_share(b"lost").share
    lose_file(media_root, lost)
    kept = make_share(b"kept").share

    first = maintenance.storage_reconcile(grace=GRACE)
    files_after_first = {path: path.read_bytes() for path in stored_files(media_root)}
    rows_after_first = snapshot()
    second = maintenance.storage_reconcile(grace=GRACE)

    assert first == maintenance.ReconcileResult(
        orphan_files=1, orphan_bytes=len(b"old orphan"), missing_files=1
    )
    assert second == maintenance.ReconcileResult(orphan_files=0, orphan_bytes=0, missing_files=0)
    assert {path: path.read_bytes() for path in stored_files(media_root)} == files_after_first
    assert set(files_after_first) == {young, media_root / kept.storage_name}
    assert snapshot() == rows_after_first


def test_names_are_checked_against_the_rows_in_batches(make_share):
    from apps.shares.services.maintenance import _names_without_rows

    known = [make_share(name=f"{n}.txt").share.storage_name for n in range(3)]
    names = [known[0], "shares/orphan-a", known[1], "shares/orphan-b", known[2]]

    assert list(_names_without_rows(iter(names), batch_size=2)) == [
        "shares/orphan-a",
        "shares/orphan-b",
    ]
