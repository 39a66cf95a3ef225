"""Abandoned uploads expire and their bytes go; a completion cut off is finished later.

The periodic job (apps.uploads.tasks.expire_uploads, the expire_uploads command) is run as
beat runs it; time is moved with time_machine.
"""

import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command

from apps.common.logging import redact
from apps.shares.models import Share
from apps.uploads import maintenance, services, tasks
from apps.uploads.models import Upload

from .tus import created_path, head, patch, upload_of

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = 3600
CONTENT = b"0123456789" * 1000


@pytest.fixture(autouse=True)
def short_sessions(settings) -> None:
    settings.UPLOAD_SESSION_TTL = TTL


def staging_dir(media_root: Path) -> Path:
    return media_root / "uploads-staging"


def staged(media_root: Path) -> list[Path]:
    directory = staging_dir(media_root)
    return sorted(directory.iterdir()) if directory.exists() else []


def at(seconds: float):
    return time_machine.travel(NOW + timedelta(seconds=seconds), tick=False)


def test_an_abandoned_upload_expires_and_the_job_removes_its_bytes(client, media_root):
    with at(0):
        path = created_path(client, len(CONTENT))
        patch(client, path, 0, CONTENT[:4000])
    with at(TTL - 1):
        assert maintenance.uploads_expire().uploads == 0
        assert len(staged(media_root)) == 1
    with at(TTL):
        result = maintenance.uploads_expire()

        assert (result.uploads, result.bytes) == (1, 4000)
        assert staged(media_root) == []
        assert upload_of(path).state == Upload.State.ENDED
        assert head(client, path).status_code == 410
        # Nothing left to do on the next run.
        assert maintenance.uploads_expire().uploads == 0
    with at(2 * TTL + 1):
        assert maintenance.uploads_expire().rows_deleted == 1
        assert head(client, path).status_code == 404


def test_an_upload_in_use_does_not_expire(client, media_root):
    with at(0):
        path = created_path(client, len(CONTENT))
    with at(TTL - 10):
        patch(client, path, 0, CONTENT[:10])
    with at(TTL + 10):
        assert maintenance.uploads_expire().uploads == 0
        assert patch(client, path, 10, CONTENT[10:20]).status_code == 204


def test_the_job_waits_for_the_lease_of_a_request_still_writing(client, media_root):
    with at(0):
        path = created_path(client, len(CONTENT))
    with at(TTL - 2):
        lease = services.lease_take(upload_of(path))
    with at(TTL + 1):  # expired, but the lease still runs
        assert maintenance.uploads_expire().uploads == 0
        assert len(staged(media_root)) == 1
    with at(TTL - 2 + services.LEASE_SECONDS):
        assert maintenance.uploads_expire().uploads == 1
        assert staged(media_root) == []
    assert lease  # the request that held it is gone


def test_a_completed_upload_forgets_its_links_when_its_session_ends(client, media_root):
    with at(0):
        path = created_path(client, 10)
        patch(client, path, 0, b"0123456789")
    with at(TTL):
        result = maintenance.uploads_expire()

        assert (result.uploads, result.bytes) == (1, 0)
        assert upload_of(path).sealed_manage_token == ""
        assert client.get(path).status_code == 410
        assert Share.objects.get().status == Share.Status.ACTIVE


def test_staged_files_no_upload_names_are_removed_once_old(client, media_root):
    with at(0):
        path = created_path(client, 100)
    directory = staging_dir(media_root)
    old_orphan = directory / "0123456789abcdef0123456789abcdef"
    new_orphan = directory / "fedcba9876543210fedcba9876543210"
    for orphan, age in ((old_orphan, TTL + 60), (new_orphan, 60)):
        orphan.write_bytes(b"left by a crash")
        stamp = (NOW - timedelta(seconds=age)).timestamp()
        os.utime(orphan, (stamp, stamp))

    with at(1):
        assert maintenance.uploads_expire().orphans == 1

    assert not old_orphan.exists()
    assert new_orphan.exists()
    assert Path(default_storage.path(upload_of(path).staging_name)).exists()


def test_dry_run_changes_nothing(client, media_root):
    with at(0):
        path = created_path(client, len(CONTENT))
        patch(client, path, 0, CONTENT[:300])
    with at(TTL):
        result = maintenance.uploads_expire(dry_run=True)

    assert (result.uploads, result.bytes) == (1, 300)
    assert len(staged(media_root)) == 1
    assert upload_of(path).purged_at is None


def test_the_task_and_the_command_run_the_job(client, media_root):
    with at(0):
        created_path(client, 10)
        created_path(client, 10)
    with at(TTL):
        assert tasks.expire_uploads()["uploads"] == 2
        stdout = io.StringIO()
        call_command("expire_uploads", stdout=stdout)
    assert stdout.getvalue().startswith("Removed 0 expired upload(s)")
    assert staged(media_root) == []


def test_beat_runs_the_job_with_the_purge():
    entry = settings.CELERY_BEAT_SCHEDULE["expire-uploads"]

    assert entry == {
        "task": "apps.uploads.tasks.expire_uploads",
        "schedule": settings.PURGE_INTERVAL,
    }


def test_upload_stats_counts_uploads_by_state_and_bytes_staged(client):
    with at(0):
        oldest = created_path(client, len(CONTENT))
        patch(client, oldest, 0, CONTENT[:100])
    with at(10):
        newer = created_path(client, len(CONTENT))
        patch(client, newer, 0, CONTENT[:50])
        complete = created_path(client, 3)
        patch(client, complete, 0, b"abc")
        stdout = io.StringIO()
        call_command("upload_stats", "--json", stdout=stdout)
        text = io.StringIO()
        call_command("upload_stats", stdout=text)

    assert json.loads(stdout.getvalue()) == {
        "uploading": 2,
        "complete": 1,
        "expired": 0,
        "ended": 0,
        "total": 3,
        "bytes_staged": 150,
        "oldest_uploading_created_at": "2030-03-01T12:00:00Z",
    }
    assert "uploading: 2" in text.getvalue()
    assert text.getvalue().splitlines()[-1] == "3 upload(s) in all."


# --- a completion cut off ----------------------------------------------------------------


def test_an_upload_whose_completion_was_cut_off_is_completed_by_get(client, media_root):
    # The last PATCH recorded its bytes, then its process died before the share was made.
    path = created_path(client, len(CONTENT), metadata={"filename": "n.txt"})
    patch(client, path, 0, CONTENT[:5000])
    upload = upload_of(path)
    with Path(default_storage.path(upload.staging_name)).open("ab") as file:
        file.write(CONTENT[5000:])
    Upload.objects.filter(pk=upload.pk).update(offset=len(CONTENT))

    assert head(client, path)["Upload-Offset"] == str(len(CONTENT))
    status = client.get(path).json()

    assert status["status"] == "complete"
    assert status["share"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert status["share"]["name"] == "n.txt"
    share = Share.objects.get()
    assert Path(default_storage.path(share.storage_name)).read_bytes() == CONTENT


def test_a_completion_cut_off_after_the_move_is_completed_by_a_patch(client, media_root):
    path = created_path(client, 10)
    patch(client, path, 0, b"01234")
    upload = upload_of(path)
    with Path(default_storage.path(upload.staging_name)).open("ab") as file:
        file.write(b"56789")
    Upload.objects.filter(pk=upload.pk).update(offset=10)
    stored = Path(default_storage.path(upload.storage_name))
    stored.parent.mkdir(parents=True, exist_ok=True)
    Path(default_storage.path(upload.staging_name)).rename(stored)

    response = patch(client, path, 10, b"")

    assert response.status_code == 200
    assert response.json()["sha256"] == hashlib.sha256(b"0123456789").hexdigest()
    assert Share.objects.get().storage_name == upload.storage_name


def test_upload_ids_are_redacted_from_log_lines(client):
    path = created_path(client, 10)
    upload_id = path.rsplit("/", 1)[-1]

    line = redact(f"Conflict: {path}")

    assert upload_id not in line
    assert line.startswith("Conflict: /api/v1/uploads/")
    assert "[redacted]" in line
