"""The management commands (shared/design.md §5), run with call_command on real files.

Links printed by create_share are followed with the test client, through the whole stack.
"""

import io
import json
import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.http import HttpResponseBase
from django.utils import timezone

from apps.shares import storage
from apps.shares.models import Share
from apps.shares.services import lifecycle, moderation
from tests.support.shares import end_share, page_download, stored_files

pytestmark = pytest.mark.django_db

CONTENT = b"%PDF-1.7 quarterly numbers\n" * 20


def run(*args: str, verbosity: int = 1) -> tuple[str, str]:
    """Run a command as the command line would; its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, f"--verbosity={verbosity}", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def body_of(response: HttpResponseBase) -> bytes:
    # Reading a streamed response to its end closes it, as a WSGI server would.
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(CONTENT)
    return path


def printed_links(stdout: str) -> tuple[str, str]:
    """The paths of the share link and the manage link create_share printed."""
    share = re.search(r"^Share link:\s+(\S+)$", stdout, re.MULTILINE)
    manage = re.search(r"^Manage link:\s+(\S+)$", stdout, re.MULTILINE)
    assert share and manage, stdout
    return urlsplit(share[1]).path, urlsplit(manage[1]).path


def write_orphan(media_root: Path, content: bytes, *, age: float) -> Path:
    """A file in shares/ with no row (an upload whose row never committed), `age` s old."""
    path = media_root / storage.STORAGE_PREFIX / secrets.token_hex(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


# create_share


def test_create_share_prints_two_links_that_work(client, report, media_root):
    stdout, stderr = run("create_share", str(report))

    share_path, manage_path = printed_links(stdout)
    assert share_path.startswith("/s/")
    assert manage_path.startswith("/m/")
    share = Share.objects.get()
    assert share.name == "report.pdf"
    assert share.max_downloads == 1
    assert f"Shared report.pdf ({len(CONTENT)} bytes, sha256 {share.sha256})" in stderr
    landing = client.get(share_path)
    assert landing.status_code == 200
    assert b"report.pdf" in landing.content
    assert client.get(manage_path).status_code == 200
    download = page_download(client, share_path)
    assert download.status_code == 200
    assert body_of(download) == CONTENT
    assert page_download(client, share_path).status_code == 410


def test_create_share_with_max_downloads_serves_that_many(client, report):
    stdout, _ = run("create_share", str(report), "--max-downloads", "2")

    share_path, _ = printed_links(stdout)
    assert [body_of(page_download(client, share_path)) for _ in range(2)] == [CONTENT, CONTENT]
    assert page_download(client, share_path).status_code == 410


def test_create_share_with_expires_in_sets_the_lifetime(report):
    run("create_share", str(report), "--expires-in", "3600")

    share = Share.objects.get()
    assert share.expires_at - share.created_at == timedelta(seconds=3600)


def test_create_share_with_password_stdin_protects_the_download(client, report, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))

    stdout, _ = run("create_share", str(report), "--password-stdin")

    share_path, _ = printed_links(stdout)
    assert Share.objects.get().password.startswith("argon2")
    assert page_download(client, share_path).status_code == 403
    assert page_download(client, share_path, {"password": "wrong"}).status_code == 403
    download = page_download(client, share_path, {"password": "correct horse"})
    assert download.status_code == 200
    assert body_of(download) == CONTENT


def test_create_share_with_password_stdin_and_empty_input_fails(report, media_root, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    with pytest.raises(CommandError, match="--password-stdin"):
        run("create_share", str(report), "--password-stdin")

    assert not Share.objects.exists()
    assert stored_files(media_root) == []


def test_create_share_of_a_missing_path_fails_naming_it(tmp_path, media_root):
    missing = tmp_path / "no-such-file.pdf"

    with pytest.raises(CommandError, match=re.escape(str(missing))):
        run("create_share", str(missing))

    assert not Share.objects.exists()


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--max-downloads", "0", "max_downloads"),
        ("--max-downloads", "101", "max_downloads"),
        ("--expires-in", "1", "expires_in"),
        ("--expires-in", str(365 * 86400), "expires_in"),
    ],
)
def test_create_share_with_an_option_out_of_range_fails_naming_it(
    report, media_root, option, value, field
):
    with pytest.raises(CommandError, match=field):
        run("create_share", str(report), option, value)

    assert not Share.objects.exists()
    assert stored_files(media_root) == []


def test_create_share_at_verbosity_0_prints_the_links_and_no_summary(report):
    stdout, stderr = run("create_share", str(report), verbosity=0)

    printed_links(stdout)
    assert stderr == ""


# purge_shares


@pytest.fixture
def ended_and_active(make_share) -> dict[str, Share]:
    shares = {
        how: make_share(how.encode() * 3, name=f"{how}.txt").share
        for how in ("active", "consumed", "expired", "revoked")
    }
    for how in ("consumed", "expired", "revoked"):
        end_share(shares[how], how)
    return shares


ENDED_BYTES = len(b"consumed" * 3) + len(b"expired" * 3) + len(b"revoked" * 3)


def test_purge_shares_deletes_ended_bytes_and_prints_one_line_summary(ended_and_active, media_root):
    stdout, _ = run("purge_shares")

    assert re.fullmatch(
        rf"Purged 3 share\(s\), {ENDED_BYTES} bytes \([^)]+\); "
        r"0 row\(s\) past retention deleted\.\n",
        stdout,
    ), stdout
    assert stored_files(media_root) == [media_root / ended_and_active["active"].storage_name]
    assert set(Share.objects.filter(purged_at__isnull=False).values_list("name", flat=True)) == {
        "consumed.txt",
        "expired.txt",
        "revoked.txt",
    }


def test_purge_shares_dry_run_counts_and_changes_nothing(ended_and_active, media_root):
    files_before = stored_files(media_root)

    stdout, _ = run("purge_shares", "--dry-run")

    assert re.fullmatch(
        rf"Would purge 3 share\(s\), {ENDED_BYTES} bytes \([^)]+\); "
        r"0 row\(s\) past retention would be deleted\.\n",
        stdout,
    ), stdout
    assert stored_files(media_root) == files_before
    assert not Share.objects.filter(purged_at__isnull=False).exists()


def test_purge_shares_deletes_rows_purged_longer_ago_than_the_retention(make_share, settings):
    settings.SHARE_RETENTION_DAYS = 30
    old = make_share(b"old").share
    lifecycle.share_revoke(share_id=old.pk)
    Share.objects.filter(pk=old.pk).update(purged_at=timezone.now() - timedelta(days=31))
    recent = make_share(b"recent").share
    lifecycle.share_revoke(share_id=recent.pk)

    stdout, _ = run("purge_shares")

    assert "Purged 0 share(s), 0 bytes" in stdout
    assert "1 row(s) past retention deleted." in stdout
    assert list(Share.objects.values_list("pk", flat=True)) == [recent.pk]


def test_purge_shares_at_verbosity_0_prints_nothing_but_purges(ended_and_active, media_root):
    stdout, stderr = run("purge_shares", verbosity=0)

    assert (stdout, stderr) == ("", "")
    assert len(stored_files(media_root)) == 1


# reconcile_storage


def test_reconcile_storage_deletes_orphans_older_than_grace_and_reports(make_share, media_root):
    orphan = write_orphan(media_root, b"no row", age=120)
    lost = make_share(b"lost").share
    (media_root / lost.storage_name).unlink()

    stdout, _ = run("reconcile_storage", "--grace", "60")

    assert stdout == (
        f"Deleted 1 orphan file(s) ({len(b'no row')} bytes) "
        "and 0 stale upload spool file(s) (0 bytes); "
        "1 share(s) with a missing file marked purged.\n"
    )
    assert not orphan.exists()
    lost.refresh_from_db()
    assert lost.purged_at is not None


def test_reconcile_storage_keeps_orphans_younger_than_the_default_grace(media_root, settings):
    settings.RECONCILE_GRACE_SECONDS = 3600
    orphan = write_orphan(media_root, b"row about to commit", age=120)

    stdout, _ = run("reconcile_storage")

    assert stdout.startswith("Deleted 0 orphan file(s) (0 bytes) and")
    assert orphan.exists()


def test_reconcile_storage_dry_run_reports_and_changes_nothing(make_share, media_root):
    orphan = write_orphan(media_root, b"no row", age=120)
    lost = make_share(b"lost").share
    (media_root / lost.storage_name).unlink()

    stdout, _ = run("reconcile_storage", "--dry-run", "--grace", "60")

    assert stdout == (
        f"Would delete 1 orphan file(s) ({len(b'no row')} bytes) "
        "and 0 stale upload spool file(s) (0 bytes); "
        "1 share(s) with a missing file would be marked purged.\n"
    )
    assert orphan.read_bytes() == b"no row"
    lost.refresh_from_db()
    assert lost.purged_at is None


def test_reconcile_storage_at_verbosity_0_prints_nothing_but_reconciles(media_root):
    orphan = write_orphan(media_root, b"no row", age=120)

    stdout, stderr = run("reconcile_storage", "--grace", "60", verbosity=0)

    assert (stdout, stderr) == ("", "")
    assert not orphan.exists()


# share_stats

OLDEST_ACTIVE = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def one_of_each(make_share) -> int:
    """Shares in every state; returns the bytes still stored."""
    created = {
        name: make_share(name.encode() * 2, name=f"{name}.txt").share
        for name in (
            "oldest",
            "newer",
            "consumed",
            "expired",
            "revoked",
            "held",
            "purged",
        )
    }
    Share.objects.filter(pk=created["oldest"].pk).update(created_at=OLDEST_ACTIVE)
    Share.objects.filter(pk=created["newer"].pk).update(created_at=datetime(2025, 3, 4, tzinfo=UTC))
    # Held for review and older still: not active, so not the oldest active share.
    Share.objects.filter(pk=created["held"].pk).update(created_at=datetime(2024, 12, 1, tzinfo=UTC))
    moderation.share_quarantine(share_id=created["held"].pk)
    for how in ("consumed", "expired", "revoked"):
        end_share(created[how], how)
    lifecycle.share_revoke(share_id=created["purged"].pk)
    return sum(share.size for name, share in created.items() if name != "purged")


def test_share_stats_json_counts_by_status(one_of_each):
    stdout, _ = run("share_stats", "--json")

    assert json.loads(stdout) == {
        "active": 2,
        "consumed": 1,
        "expired": 1,
        "revoked": 2,  # one of them purged since
        "quarantined": 1,
        "purged": 1,
        "total": 7,
        "bytes_stored": one_of_each,
        "oldest_active_created_at": "2025-01-02T03:04:05Z",
    }


def test_share_stats_json_with_no_shares(db):
    stdout, _ = run("share_stats", "--json")

    stats = json.loads(stdout)
    assert stats["total"] == stats["active"] == stats["bytes_stored"] == 0
    assert stats["oldest_active_created_at"] is None


def test_share_stats_text_lists_each_count_and_a_summary(one_of_each):
    stdout, _ = run("share_stats")

    lines = stdout.splitlines()
    table = dict(line.strip().split(": ", 1) for line in lines[:-1])
    assert table == {
        "active": "2",
        "consumed": "1",
        "expired": "1",
        "revoked": "2",
        "quarantined": "1",
        "purged": "1",
        "stored": table["stored"],
        "oldest": "2025-01-02 03:04:05Z",
    }
    assert table["stored"].startswith(f"{one_of_each} bytes (")
    assert lines[-1] == "7 share(s) in all."


def test_share_stats_at_verbosity_0_prints_no_summary(one_of_each):
    stdout, _ = run("share_stats", verbosity=0)

    assert "in all" not in stdout
    assert "active: 2" in stdout
