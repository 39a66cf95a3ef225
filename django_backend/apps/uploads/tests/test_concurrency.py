"""One writer at a time, with no database transaction held while a body streams.

Real threads against the real database (PostgreSQL and SQLite, one pass each), through the
whole stack: a request body that stops halfway and waits is how a second request is made to
arrive while the first one is writing, deterministically.
"""

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from apps.shares.models import Share
from apps.uploads import services
from apps.uploads.exceptions import UploadConflict
from apps.uploads.staging import Progress
from tests.support.api import assert_api_error

from .tus import DEADLINE, OFFSET_STREAM, TUS, HeldBody, created_path, head, patch, upload_of

pytestmark = pytest.mark.django_db(transaction=True)

HALF = b"first half of the file, " * 4000
SECOND = b"and the second half. " * 4000


def patch_with_body(path: str, offset: int, body: HeldBody, length: int, results: dict) -> None:
    response = Client().generic(
        "PATCH",
        path,
        headers={**TUS, "Upload-Offset": str(offset)},
        CONTENT_TYPE=OFFSET_STREAM,
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": body},
    )
    results["response"] = response


def start(path: str, offset: int, body: HeldBody, length: int) -> tuple[threading.Thread, dict]:
    results: dict = {}
    thread = threading.Thread(target=patch_with_body, args=(path, offset, body, length, results))
    thread.start()
    assert body.holding.wait(DEADLINE), "the first request never got to its body"
    return thread, results


def test_two_patches_at_once_one_writes_the_other_gets_409_and_the_file_is_right(media_root):
    client = Client()
    path = created_path(client, len(HALF) + len(SECOND))
    body = HeldBody(HALF, hold_at=len(HALF) // 2)
    thread, results = start(path, 0, body, len(HALF))

    # The first request holds the upload, halfway through its body.
    rival = patch(client, path, 0, HALF)
    body.release.set()
    thread.join(DEADLINE)

    assert_api_error(rival, 409, "conflict")
    first = results["response"]
    assert (first.status_code, first["Upload-Offset"]) == (204, str(len(HALF)))
    [staged] = (media_root / "uploads-staging").iterdir()
    assert staged.read_bytes() == HALF
    final = patch(client, path, len(HALF), SECOND)
    assert final.status_code == 200
    share = Share.objects.get()
    assert Path(media_root / share.storage_name).read_bytes() == HALF + SECOND
    assert share.sha256 == hashlib.sha256(HALF + SECOND).hexdigest()


def test_terminate_during_a_patch_is_409(media_root):
    client = Client()
    path = created_path(client, len(HALF))
    body = HeldBody(HALF, hold_at=1000)
    thread, results = start(path, 0, body, len(HALF))

    response = client.delete(path, headers=TUS)
    body.release.set()
    thread.join(DEADLINE)

    assert_api_error(response, 409, "conflict")
    assert results["response"].status_code == 200


def test_a_long_patch_records_its_progress_as_it_goes(monkeypatch):
    # Every chunk is a checkpoint: what a killed request loses is what came since the last.
    monkeypatch.setattr(services, "RENEW_AFTER_SECONDS", 0)
    client = Client()
    path = created_path(client, len(HALF) + len(SECOND))
    body = HeldBody(HALF, hold_at=len(HALF) // 2)
    thread, _ = start(path, 0, body, len(HALF))

    during = int(head(client, path)["Upload-Offset"])
    body.release.set()
    thread.join(DEADLINE)

    # Django reads a body in pieces of at most 256 KiB: at least one piece was recorded.
    assert 0 < during <= len(HALF) // 2


def test_a_body_that_breaks_off_keeps_what_arrived(media_root):
    client = Client()
    path = created_path(client, len(HALF) + len(SECOND))
    body = HeldBody(HALF, hold_at=10_000, fail_with=OSError("connection reset by peer"))
    body.release.set()

    response = client.generic(
        "PATCH",
        path,
        headers={**TUS, "Upload-Offset": "0"},
        CONTENT_TYPE=OFFSET_STREAM,
        CONTENT_LENGTH=str(len(HALF)),
        **{"wsgi.input": body},
    )

    assert_api_error(response, 400, "invalid")
    assert head(client, path)["Upload-Offset"] == "10000"
    [staged] = (media_root / "uploads-staging").iterdir()
    assert staged.read_bytes() == HALF[:10_000]
    assert patch(client, path, 10_000, HALF[10_000:]).status_code == 204


def test_a_body_that_breaks_off_under_a_checksum_keeps_nothing():
    client = Client()
    path = created_path(client, len(HALF))
    body = HeldBody(HALF, hold_at=10_000, fail_with=OSError("connection reset by peer"))
    body.release.set()

    response = client.generic(
        "PATCH",
        path,
        headers={**TUS, "Upload-Offset": "0", "Upload-Checksum": "sha1 " + "A" * 27 + "="},
        CONTENT_TYPE=OFFSET_STREAM,
        CONTENT_LENGTH=str(len(HALF)),
        **{"wsgi.input": body},
    )

    assert_api_error(response, 400, "invalid")
    assert head(client, path)["Upload-Offset"] == "0"


def test_the_lease_of_a_request_that_died_runs_out(media_root):
    client = Client()
    path = created_path(client, len(HALF))
    upload = upload_of(path)
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        # A request took the upload and died (kill -9) without a word.
        dead_lease = services.lease_take(upload)
        assert_api_error(patch(client, path, 0, HALF), 409, "conflict")
    with time_machine.travel(now + timedelta(seconds=services.LEASE_SECONDS + 1), tick=False):
        response = patch(client, path, 0, HALF)
        assert response.status_code == 200
        # The dead request, had it woken up, could record nothing any more.
        with pytest.raises(UploadConflict):
            services._record(upload, dead_lease, Progress(offset=5))
    assert upload_of(path).offset == len(HALF)


def test_bytes_a_dead_request_wrote_past_the_recorded_offset_do_not_count(media_root):
    client = Client()
    path = created_path(client, len(HALF) + len(SECOND))
    patch(client, path, 0, HALF)
    [staged] = (media_root / "uploads-staging").iterdir()
    with staged.open("ab") as file:  # written, never recorded
        file.write(b"garbage from a request killed before it recorded its bytes")

    assert head(client, path)["Upload-Offset"] == str(len(HALF))
    assert patch(client, path, len(HALF), SECOND).status_code == 200
    share = Share.objects.get()
    assert Path(media_root / share.storage_name).read_bytes() == HALF + SECOND
    assert share.sha256 == hashlib.sha256(HALF + SECOND).hexdigest()
