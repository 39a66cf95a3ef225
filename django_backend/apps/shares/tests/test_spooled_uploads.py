"""Uploads spool to a directory the service owns (FILE_UPLOAD_TEMP_DIR, by default
MEDIA_ROOT/.uploads) while their body streams in. A worker killed mid-body (SIGKILL, the
OOM killer) cannot delete its spool file; reconcile_storage and the start-up step remove
such leftovers once they are older than the grace period, and never the spool file of an
upload still being received.

Against a real gunicorn: what a killed process leaves behind cannot be seen otherwise.
"""

import hashlib
import json
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.shares import uploads
from apps.shares.services import maintenance
from tests.support.api import assert_api_error
from tests.support.app_server import AppServer, pid_alive, start_app_server
from tests.support.processes import Processes, answers, wait_until
from tests.support.shares import stored_files

DEADLINE = 30.0  # seconds
# The server reads a body RAW_CHUNK_SIZE bytes at a time and spools each piece once it is
# whole: what is sent before the client stalls spans two of them.
TOTAL = 4 * uploads.RAW_CHUNK_SIZE  # bytes the client announces
SENT = 2 * uploads.RAW_CHUNK_SIZE  # bytes it sends before it stalls or the worker dies
BOUNDARY = "SpoolTestBoundary"


def put_head(size: int) -> bytes:
    return (
        f"PUT /api/v1/shares/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def multipart_head(size: int) -> bytes:
    """Headers and the start of a multipart body whose file part is `size` bytes long."""
    part = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    return (
        f"POST /api/v1/shares HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(part) + size + len(closing)}\r\nConnection: close\r\n\r\n"
    ).encode() + part


@contextmanager
def half_sent_upload(
    server: AppServer, how: str, content: bytes = b"x" * TOTAL
) -> Iterator[tuple[socket.socket, Path]]:
    """An upload of `content` (TOTAL bytes) of which SENT have gone out, once the server
    has spooled them: the connection and the upload's spool file."""
    spooled_before = server.spooled_files()
    head = put_head(TOTAL) if how == "put" else multipart_head(TOTAL)
    with server.connect() as connection:
        connection.sendall(head + content[:SENT])

        def spooled_new_file() -> Path | None:
            for path in server.spooled_files() - spooled_before:
                if path.stat().st_size >= SENT // 2:
                    return path
            return None

        yield connection, wait_until("the upload to spool", spooled_new_file, DEADLINE)


def kill_worker(server: AppServer) -> None:
    """SIGKILL to the one worker, as the OOM killer sends it; gunicorn starts another."""
    [worker] = server.workers()
    os.kill(worker, signal.SIGKILL)
    wait_until("the worker to die", lambda: not pid_alive(worker), DEADLINE)
    wait_until(
        "a new worker to serve",
        lambda: worker not in server.workers() and answers(f"{server.url}/health/"),
        DEADLINE,
    )


def reconcile(server: AppServer, *options: str) -> str:
    return server.manage("reconcile_storage", *options).stdout


@pytest.mark.parametrize("how", ["put", "multipart"])
def test_spool_of_an_upload_whose_worker_was_killed_is_removed_by_reconcile(app_server, how):
    with half_sent_upload(app_server, how) as (_connection, spool):
        assert spool.parent == app_server.media_root / ".uploads"
        kill_worker(app_server)
    # The killed worker could not clean up: without the reconciler this file stays forever.
    assert spool.exists()
    size = spool.stat().st_size

    young = reconcile(app_server)

    # Younger than the grace period (RECONCILE_GRACE_SECONDS, an hour by default): kept.
    assert spool.exists()
    assert "0 stale upload spool file(s)" in young

    swept = reconcile(app_server, "--grace", "0")

    assert not spool.exists()
    assert f"1 stale upload spool file(s) ({size} bytes)" in swept


def test_spool_of_an_upload_still_being_received_is_never_removed(app_server):
    content = os.urandom(1024) * (TOTAL // 1024)
    with half_sent_upload(app_server, "put", content) as (connection, spool):
        # Even with no grace at all: the receiving worker holds a lock on its spool file.
        swept = reconcile(app_server, "--grace", "0")

        assert spool.exists()
        assert "0 stale upload spool file(s)" in swept
        connection.sendall(content[SENT:])
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 201 " in status_line, answer[:500]
    created = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert created["sha256"] == hashlib.sha256(content).hexdigest()
    assert created["size"] == TOTAL
    assert not spool.exists()


def bytes_written(pid: int) -> int:
    """What the process passed to write() and its kin so far (wchar of /proc/<pid>/io):
    files, sockets and logs alike, page cache or not."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no wchar in /proc/{pid}/io")


@pytest.mark.parametrize("how", ["put", "multipart"])
def test_an_upload_is_written_once_and_stored_by_renaming_its_spool_file(app_server, how):
    """The spool is on the media's filesystem, so FileSystemStorage stores an upload with
    file_move_safe (a rename: TemporaryUploadedFile has temporary_file_path()), and the
    worker writes its bytes once. Stored by copying instead, the stored file would be
    another inode and the worker would have written every byte twice."""
    content = os.urandom(1024) * (TOTAL // 1024)
    closing = f"\r\n--{BOUNDARY}--\r\n".encode() if how == "multipart" else b""
    stored_before = app_server.stored_files()
    [worker] = app_server.workers()
    written_before = bytes_written(worker)
    with half_sent_upload(app_server, how, content) as (connection, spool):
        spool_inode = spool.stat().st_ino
        connection.sendall(content[SENT:] + closing)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    written = bytes_written(worker) - written_before

    assert b" 201 " in answer.partition(b"\r\n")[0], answer[:500]
    [stored] = app_server.stored_files() - stored_before
    assert stored.stat().st_ino == spool_inode
    assert stored.read_bytes() == content
    assert not spool.exists()
    # The file once, plus the answer and a few log lines.
    assert TOTAL <= written < TOTAL + 256 * 1024, written


@pytest.mark.parametrize("how", ["put", "multipart"])
@pytest.mark.parametrize("hang_up", ["close", "reset"])
def test_an_upload_the_client_abandons_leaves_no_spool_file_and_no_traceback(
    app_server, how, hang_up
):
    """The browser's Cancel, a killed curl: the worker lives on and deletes the spool file
    itself, at once rather than whenever garbage collection gets to it."""
    log_before = len(app_server.log_text())
    with half_sent_upload(app_server, how) as (connection, spool):
        if hang_up == "reset":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            connection.shutdown(socket.SHUT_WR)

    wait_until("the abandoned upload's spool file to go", lambda: not spool.exists(), DEADLINE)
    assert "Traceback" not in app_server.log_text()[log_before:]


def test_start_up_removes_stale_spools_of_a_killed_server_and_keeps_young_ones(
    tmp_path_factory,
):
    root = tmp_path_factory.mktemp("restarted-server")
    with Processes(root) as first_run:
        server = start_app_server(first_run, root)
        with (
            half_sent_upload(server, "put") as (_first, stale),
            half_sent_upload(server, "multipart") as (_second, young),
        ):
            # The whole server dies at once (the container is killed): arbiter and worker.
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.popen.wait(timeout=DEADLINE)
    assert stale.exists() and young.exists()
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))

    with Processes(root) as second_run:
        start_app_server(second_run, root)

        assert not stale.exists()
        assert young.exists()


# --- the sweep itself, in this process ------------------------------------------------


def spool_file(directory: Path, name: str, *, age: float, content: bytes = b"partial") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(content)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@pytest.mark.django_db
def test_reconcile_removes_only_stale_spool_files_of_the_service(upload_tmp, tmp_path):
    stale = spool_file(upload_tmp, f"{uploads.SPOOL_PREFIX}a{uploads.SPOOL_SUFFIX}", age=7200)
    young = spool_file(upload_tmp, f"{uploads.SPOOL_PREFIX}b{uploads.SPOOL_SUFFIX}", age=60)
    # Not ours, whatever its age: an operator may point FILE_UPLOAD_TEMP_DIR at a shared
    # temporary directory.
    foreign = spool_file(upload_tmp, "report.pdf", age=7200)
    outside = spool_file(tmp_path / "elsewhere", "precious", age=7200)
    link = upload_tmp / f"{uploads.SPOOL_PREFIX}link{uploads.SPOOL_SUFFIX}"
    link.symlink_to(outside)
    os.utime(link, (0, 0), follow_symlinks=False)

    result = maintenance.storage_reconcile(grace=3600)

    assert (result.stale_spools, result.stale_spool_bytes) == (1, len(b"partial"))
    assert not stale.exists()
    assert young.exists() and foreign.exists() and outside.exists()


@pytest.mark.django_db
def test_reconcile_dry_run_counts_stale_spools_and_keeps_them(upload_tmp):
    stale = spool_file(upload_tmp, f"{uploads.SPOOL_PREFIX}a{uploads.SPOOL_SUFFIX}", age=7200)

    result = maintenance.storage_reconcile(grace=3600, dry_run=True)

    assert (result.stale_spools, result.stale_spool_bytes) == (1, len(b"partial"))
    assert stale.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("spool", ["never-created", "a-regular-file"])
def test_reconcile_without_a_usable_spool_directory_finds_nothing_and_goes_on(
    settings, tmp_path, make_share, spool
):
    """Neither the reconciler nor the start-up step stops over the spool directory."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / spool)
    if spool == "a-regular-file":
        (tmp_path / spool).write_bytes(b"")
    lost = make_share(b"lost").share
    (Path(settings.MEDIA_ROOT) / lost.storage_name).unlink()

    result = maintenance.storage_reconcile(grace=0)

    assert (result.stale_spools, result.stale_spool_bytes) == (0, 0)
    assert result.missing_files == 1


# --- a spool directory that cannot be used --------------------------------------------


@pytest.fixture
def unusable_spool(settings, tmp_path) -> None:
    """FILE_UPLOAD_TEMP_DIR below a regular file: no directory can be made there (a volume
    mounted wrong, say), whoever the tests run as."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    settings.FILE_UPLOAD_TEMP_DIR = str(blocker / "spool")


@pytest.mark.django_db
@pytest.mark.usefixtures("unusable_spool")
@pytest.mark.parametrize("how", ["api-multipart", "api-put", "upload-page"])
def test_an_unusable_spool_directory_answers_503_not_500(client, media_root, how):
    upload = SimpleUploadedFile("notes.txt", b"some bytes")
    if how == "api-multipart":
        response = client.post("/api/v1/shares", {"file": upload})
    elif how == "api-put":
        response = client.put(
            "/api/v1/shares/notes.txt", data=b"some bytes", content_type="text/plain"
        )
    else:
        response = client.post("/", {"file": upload, "expires_in": "86400", "max_downloads": "1"})

    assert response.status_code == 503
    if how.startswith("api"):
        assert_api_error(response, 503, "unavailable")
    assert stored_files(media_root) == []
