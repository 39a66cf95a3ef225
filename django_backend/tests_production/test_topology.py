"""The production topology on loopback, without Docker: what docker-compose.yml runs, minus
the containers.

- nginx with deploy/nginx/onetimeshare.conf.template, rendered as the nginx image renders it;
- two gunicorns (gthread), each started through scripts/entrypoint.sh with DJANGO_DEBUG=0,
  at the same instant, on one fresh PostgreSQL database (so their migrations race, and
  migrate_locked must make them take turns); nginx proxies to the first, the racers also
  call the second directly, as a second replica;
- a Celery worker and beat, through the entrypoint with SKIP_MIGRATIONS/SKIP_COLLECTSTATIC,
  on a Redis database of their own;
- downloads offloaded to nginx (DOWNLOAD_OFFLOAD=nginx, X-Accel-Redirect), ranges of a
  download session (/d/<token>) answered by nginx too; the app cannot learn that nginx sent
  every byte, so the bytes stay until the session's window closes and the purge job
  (PURGE_INTERVAL=2) deletes them. The window (DOWNLOAD_SESSION_TTL, a minute at least) is
  closed by moving its end to now in the database, as if the time had passed.

The whole topology runs twice, once per VARIANTS entry: "local-offload" is the above;
"s3" stores the bytes in a bucket of a moto S3 server (a subprocess on a loopback port)
with DOWNLOAD_OFFLOAD=off, so gunicorn streams each download and each range from the bucket
through nginx and deletes the object once every byte was sent (the task the claim enqueues
and the purge job are the net).
Every test runs against both; where they differ, a helper asks the Variant. The topology
is the `topology` fixture of conftest.py, started by the harness of tests/support/processes.py.

Every wait has a deadline; every process is stopped and the database dropped whatever
happens. Needs nginx, PostgreSQL (TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432)
and Redis on 127.0.0.1:6379: skipped without them, failed in CI (REQUIRE_POSTGRES=1). Runs
once per `make test`: in the PostgreSQL pass, not again in the SQLite one.
"""

import http.client
import json
import re
import secrets
import socket
import subprocess
import threading
import time
from collections import Counter
from hashlib import sha256
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from tests.support.env import DJANGO_DIR, VENV_BIN
from tests.support.production import (
    MAX_UPLOAD_SIZE,
    REQUEST_TIMEOUT,
    STATIC_ROOT,
    Topology,
    access_log_lines,
    stored_names,
    upload,
)

# Once per `make test`, in the PostgreSQL pass: the topology brings its own database.
pytestmark = [pytest.mark.production, pytest.mark.postgresql]

RACERS = 60
# The purge task runs PURGE_AFTER_LAST_DOWNLOAD=1 s after the claim, the purge job every
# PURGE_INTERVAL=2 s; the deadline is for a machine busy with other tests.
PURGE_DEADLINE = 30.0
STORAGE_NAME = re.compile(r"shares/[0-9a-f]{32}")
SESSION_PATH = re.compile(r"/d/[\w-]{32,}")


def sql(topology: Topology, query: str, params: tuple = ()) -> list[tuple]:
    """A statement on the topology's own database: its rows, [] for one that has none."""
    with psycopg.connect(topology.env["DATABASE_URL"], autocommit=True) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def timeline(topology: Topology, share_token: str) -> list[str]:
    """The kinds of a share's timeline entries, oldest first."""
    rows = sql(
        topology,
        "SELECT event.kind FROM shares_shareevent event"
        " JOIN shares_share share ON share.id = event.share_id"
        " WHERE share.share_token_hash = %s ORDER BY event.at, event.id",
        (sha256(share_token.encode()).hexdigest(),),
    )
    return [kind for (kind,) in rows]


def session_token_of(url: str) -> str:
    path = urlsplit(url).path
    assert SESSION_PATH.fullmatch(path), url
    return path.removeprefix("/d/")


def assert_the_bytes_go_when_the_session_ends(
    topology: Topology, share_token: str, session_url: str, stored: str
) -> None:
    """Served by the app (s3): the session completed when its last byte left, and the bytes
    went with it. Offloaded: nginx sent them and the app cannot know it did, so the bytes
    stay, past the purge runs that follow the claim's grace, for as long as the session's
    window is open; once it closes, the purge job ends it and deletes them."""
    processes = topology.processes
    if not topology.variant.offloaded:
        processes.wait_until(
            "the bytes deleted once every byte was sent",
            lambda: stored not in stored_names(topology),
            PURGE_DEADLINE,
        )
        assert "download_completed" in timeline(topology, share_token)
        assert requests.get(session_url, timeout=REQUEST_TIMEOUT).status_code == 410
        return

    # A purge run that began after the claim's grace had passed has seen the share: its
    # finish lies past the claim + PURGE_AFTER_LAST_DOWNLOAD + one PURGE_INTERVAL.
    grace = int(topology.env["PURGE_AFTER_LAST_DOWNLOAD"]) + int(topology.env["PURGE_INTERVAL"])
    token_hash = sha256(share_token.encode()).hexdigest()
    processes.wait_until(
        "a purge run after the claim's grace",
        lambda: sql(
            topology,
            "SELECT 1 FROM shares_jobrun job, shares_share share"
            " WHERE job.name = 'purge_shares' AND share.share_token_hash = %s"
            " AND job.finished_at > share.consumed_at + make_interval(secs => %s)",
            (token_hash, grace),
        ),
        PURGE_DEADLINE,
    )
    assert stored in stored_names(topology)
    assert requests.head(session_url, timeout=REQUEST_TIMEOUT).status_code == 200
    assert "download_completed" not in timeline(topology, share_token)

    # DOWNLOAD_SESSION_TTL passes.
    session_hash = sha256(session_token_of(session_url).encode()).hexdigest()
    sql(
        topology,
        "UPDATE shares_downloadsession SET expires_at = now() WHERE token_hash = %s",
        (session_hash,),
    )
    # The bytes go first, then the timeline says so.
    processes.wait_until(
        "the purge job to close the window, delete the bytes and say so",
        lambda: timeline(topology, share_token)[-2:] == ["download_window_closed", "purged"],
        PURGE_DEADLINE,
    )
    assert stored not in stored_names(topology)
    assert requests.get(session_url, timeout=REQUEST_TIMEOUT).status_code == 410


def assert_sent_by_the_right_server(topology: Topology, logged: dict[str, str], size: int) -> None:
    """nginx sent `size` bytes; gunicorn sent none of them (offload) or all of them."""
    assert logged["bytes"] == str(size)
    if topology.variant.offloaded:
        # The app's answer was an empty X-Accel-Redirect; nginx read the file from disk.
        assert logged["upstream_bytes"] == "0"
    else:
        # The app streamed the object from the bucket and nginx passed it on.
        assert logged["upstream_bytes"] == str(size)


def assert_winner_got_the_file(
    topology: Topology, via: str, headers: dict, body: bytes, payload: bytes
) -> None:
    if topology.variant.offloaded and via == "B":
        # Straight from gunicorn: the hand-over to nginx, no bytes.
        assert headers["X-Accel-Redirect"].startswith("/_protected/shares/")
        assert body == b""
    else:
        assert "X-Accel-Redirect" not in headers
        assert body == payload


def test_a_share_goes_through_nginx_once_and_is_gone(topology):
    payload = secrets.token_bytes(300_000)  # several sendfile chunks
    stored_before = stored_names(topology)

    share = upload(topology, payload, "quarterly report.pdf")
    token, manage_token = share["token"], share["manage_token"]
    # nginx passes the Host with its port: the links point at nginx.
    assert share["url"] == f"{topology.nginx_url}/s/{token}"
    (stored,) = stored_names(topology) - stored_before
    assert STORAGE_NAME.fullmatch(stored)

    landing = requests.get(f"{topology.nginx_url}/s/{token}", timeout=REQUEST_TIMEOUT)
    assert landing.status_code == 200
    assert "no-store" in landing.headers["Cache-Control"]
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    # nginx's request id reaches the app, which sends it back.
    request_id = landing.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    manage = requests.get(f"{topology.nginx_url}/m/{manage_token}", timeout=REQUEST_TIMEOUT)
    assert manage.status_code == 200
    assert manage.headers["Referrer-Policy"] == "no-referrer"

    download_path = f"/api/v1/shares/{token}/download"
    download = requests.post(f"{topology.nginx_url}{download_path}", timeout=REQUEST_TIMEOUT)
    assert download.status_code == 200
    assert download.content == payload
    headers = download.headers
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "quarterly%20report.pdf" in headers["Content-Disposition"]
    assert headers["Content-Type"] == "application/octet-stream"
    # Exactly these values, each once (requests joins repeated headers with ", ").
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])
    assert "X-Accel-Redirect" not in headers
    assert headers["Content-Length"] == str(len(payload))
    # Where to resume, and the validators a resume sends back (through nginx or not).
    session_url = headers["Content-Location"]
    assert session_url.startswith(f"{topology.nginx_url}/d/")
    session_token = session_token_of(session_url)
    assert headers["ETag"] == f'"{share["sha256"]}"'
    assert headers["Accept-Ranges"] == "bytes"
    assert "Last-Modified" in headers
    # nginx logs a request once it has ended, which may be a moment after the client has
    # read the last byte.
    entries = topology.processes.wait_until(
        "the access log's redacted download entry",
        lambda: access_log_lines(topology, "POST", "/api/v1/shares/<token>/download"),
    )
    assert len(entries) == 1, f"one redacted download entry expected in {topology.access_log}"
    logged = entries[0]
    assert logged["status"] == "200"
    assert_sent_by_the_right_server(topology, logged, len(payload))

    again = requests.post(f"{topology.nginx_url}{download_path}", timeout=REQUEST_TIMEOUT)
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "gone"

    assert_the_bytes_go_when_the_session_ends(topology, token, session_url, stored)
    # No token, no manage token, no file name in any log: nginx's, gunicorn's, Celery's.
    every_log = topology.every_log()
    assert request_id in topology.access_log.read_text()
    for secret in (token, manage_token, session_token, "quarterly"):
        assert secret not in every_log, f"{secret!r} is in a log"


def press_download(topology: Topology, token: str) -> str:
    """The landing page's Download button through nginx: the claim's 303 to its session."""
    press = requests.post(
        f"{topology.nginx_url}/s/{token}", allow_redirects=False, timeout=REQUEST_TIMEOUT
    )
    assert press.status_code == 303, press.text
    assert SESSION_PATH.fullmatch(press.headers["Location"]), press.headers["Location"]
    return f"{topology.nginx_url}{press.headers['Location']}"


def test_a_download_cut_off_resumes_through_nginx_with_a_range(topology):
    payload = secrets.token_bytes(400_000)
    stored_before = stored_names(topology)
    share = upload(topology, payload, "resumed.bin")
    token = share["token"]
    (stored,) = stored_names(topology) - stored_before
    session_url = press_download(topology, token)
    etag = f'"{share["sha256"]}"'

    cut = 123_457
    if topology.variant.offloaded:
        # The browser's first attempt: the whole file, cut off after `cut` bytes. nginx sent
        # it from disk; the app cannot tell how far it got.
        with requests.get(session_url, stream=True, timeout=REQUEST_TIMEOUT) as first:
            assert first.status_code == 200
            assert first.headers["Content-Length"] == str(len(payload))
            received = first.raw.read(cut)
    else:
        # gunicorn streams through nginx's buffers and loopback's socket buffers (megabytes),
        # so a client that stops reading after `cut` bytes of these 400 KB has been sent all
        # of them, and the session ends as delivered. The first part, asked as a range,
        # stands in for the cut; cut-offs of the app's own sending are tested through
        # gunicorn (test_served_downloads.py) and in Chromium (tests_e2e/test_resume.py).
        first = requests.get(
            session_url, headers={"Range": f"bytes=0-{cut - 1}"}, timeout=REQUEST_TIMEOUT
        )
        assert first.status_code == 206
        received = first.content
    assert received == payload[:cut]
    assert first.headers["Accept-Ranges"] == "bytes"  # once: nginx's or the app's, not both
    assert first.headers["ETag"] == etag
    first_headers = first.headers

    # Its Resume: the rest, if the file is still the one it started.
    logged_before = len(access_log_lines(topology, "GET", "/d/<token>"))
    rest = requests.get(
        session_url,
        headers={"Range": f"bytes={cut}-", "If-Range": etag},
        timeout=REQUEST_TIMEOUT,
    )

    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {cut}-{len(payload) - 1}/{len(payload)}"
    assert rest.headers["Content-Length"] == str(len(payload) - cut)
    assert received + rest.content == payload
    assert rest.headers["ETag"] == etag
    assert rest.headers["Last-Modified"] == first_headers["Last-Modified"]
    assert rest.headers["Content-Disposition"] == first_headers["Content-Disposition"]
    assert rest.headers["Content-Type"] == "application/octet-stream"
    assert rest.headers["X-Content-Type-Options"] == "nosniff"
    assert rest.headers["Referrer-Policy"] == "no-referrer"
    # nginx logs a request once it has ended; the cut-off one may end after the resume.
    (logged,) = topology.processes.wait_until(
        "the access log's redacted 206 for /d/",
        lambda: [
            entry
            for entry in access_log_lines(topology, "GET", "/d/<token>")[logged_before:]
            if entry["status"] == "206"
        ],
    )
    assert_sent_by_the_right_server(topology, logged, len(payload) - cut)
    assert_the_bytes_go_when_the_session_ends(topology, token, session_url, stored)
    every_log = topology.every_log()
    for secret in (token, session_token_of(session_url)):
        assert secret not in every_log, f"{secret!r} is in a log"


def test_nginx_answers_a_stale_if_range_with_the_whole_file_and_never_a_304(topology):
    payload = secrets.token_bytes(50_000)
    share = upload(topology, payload, "validators.bin")
    session_url = press_download(topology, share["token"])
    etag = f'"{share["sha256"]}"'

    fresh = requests.get(
        session_url, headers={"Range": "bytes=-10", "If-Range": etag}, timeout=REQUEST_TIMEOUT
    )
    # The whole file, last: served by the app, it completes the session.
    stale = requests.get(
        session_url,
        headers={
            "Range": "bytes=-10",
            "If-Range": '"a-file-since-replaced"',
            "If-None-Match": etag,
        },
        timeout=REQUEST_TIMEOUT,
    )

    assert fresh.status_code == 206
    assert fresh.content == payload[-10:]
    assert stale.status_code == 200
    assert stale.content == payload


def test_replicas_starting_together_migrated_one_at_a_time(topology):
    logs = {name: topology.log_of(name) for name in ("gunicorn-a", "gunicorn-b")}
    for name, log in logs.items():
        assert "accepts connections" in log, name  # wait_for_db
        assert "under advisory lock" in log, name  # migrate_locked's summary
        assert "static files copied" in log, name  # collectstatic
    # One applied the migrations; the other waited for the lock, then found nothing to do.
    appliers = [name for name, log in logs.items() if "Applying shares.0001_initial... OK" in log]
    assert len(appliers) == 1, appliers


def test_nginx_serves_static_files_and_nothing_else_from_disk(topology):
    manifest = json.loads((STATIC_ROOT / "staticfiles.json").read_text())
    hashed = manifest["paths"]["common/site.css"]

    css = requests.get(f"{topology.nginx_url}/static/{hashed}", timeout=REQUEST_TIMEOUT)

    assert css.status_code == 200
    assert css.content == (STATIC_ROOT / hashed).read_bytes()
    assert "immutable" in css.headers["Cache-Control"]
    assert "X-Request-ID" not in css.headers  # nginx answered, gunicorn never saw it
    for path in ("/static/.collectstatic.lock", "/_protected/", "/_protected/shares/x"):
        response = requests.get(f"{topology.nginx_url}{path}", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 404, path


def test_nginx_refuses_an_oversized_upload_in_the_api_error_shape(topology):
    host, port = urlsplit(topology.nginx_url).hostname, urlsplit(topology.nginx_url).port
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        # Only the headers: nginx answers from Content-Length before any body is sent.
        connection.putrequest("POST", "/api/v1/shares")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(4 * MAX_UPLOAD_SIZE))
        connection.endheaders()
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert body["error"]["code"] == "too_large"


def test_worker_and_beat_answer_the_compose_health_checks(topology):
    # The commands docker-compose.yml's health checks run, by node name as there.
    hostname = socket.gethostname()
    pings = {
        node: subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "core", "inspect", "ping", "-d", node, "-t", "5"],
            cwd=DJANGO_DIR,
            env=topology.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for node in (f"celery@{hostname}", f"celerybeat@{hostname}")
    }
    for node, ping in pings.items():
        output, _ = ping.communicate(timeout=60)
        assert ping.returncode == 0, output.decode(errors="replace")
        assert f"{node}: OK" in output.decode()


def test_sixty_racers_on_two_gunicorns_exactly_one_gets_the_file(topology):
    payload = secrets.token_bytes(100_000)
    share = upload(topology, payload, "race.bin")
    token = share["token"]
    path = f"/api/v1/shares/{token}/download"
    barrier = threading.Barrier(RACERS)
    results: list[tuple[str, int, dict, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def racer(index: int) -> None:
        # Half through nginx (to gunicorn A), half straight to gunicorn B, with the header
        # nginx would have set (the rate limiter keys on it).
        via, url = ("nginx", topology.nginx_url) if index % 2 == 0 else ("B", topology.second_url)
        try:
            barrier.wait(timeout=30)
            response = requests.post(
                f"{url}{path}", headers={"X-Real-IP": "127.0.0.1"}, timeout=REQUEST_TIMEOUT
            )
            with lock:
                results.append((via, response.status_code, response.headers, response.content))
        except BaseException as exc:  # reported below; a thread must not fail silently
            with lock:
                errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=racer, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    topology.timings[f"race of {RACERS}"] = time.monotonic() - started

    assert not errors, errors
    statuses = Counter(status for _, status, _, _ in results)
    assert statuses == {200: 1, 410: RACERS - 1}, f"the app's logs: {topology.logs}"
    assert Counter(via for via, _, _, _ in results) == {"nginx": RACERS // 2, "B": RACERS // 2}
    ((via, _, headers, body),) = [result for result in results if result[1] == 200]
    assert_winner_got_the_file(topology, via, headers, body, payload)
    every_log = topology.every_log()
    assert token not in every_log
    assert share["manage_token"] not in every_log
