"""The production topology on loopback, without Docker: what docker-compose.yml runs, minus
the containers.

- nginx with deploy/nginx/onetimeshare.conf.template, rendered as the nginx image renders it;
- two gunicorns (gthread), each started through scripts/entrypoint.sh with DJANGO_DEBUG=0,
  at the same instant, on one fresh PostgreSQL database (so their migrations race, and
  migrate_locked must make them take turns); nginx proxies to the first, the racers also
  call the second directly, as a second replica;
- a Celery worker and beat, through the entrypoint with SKIP_MIGRATIONS/SKIP_COLLECTSTATIC,
  on a Redis database of their own;
- downloads offloaded to nginx (DOWNLOAD_OFFLOAD=nginx, X-Accel-Redirect), and the bytes
  deleted by the task the claim enqueues (PURGE_AFTER_LAST_DOWNLOAD=1).

The whole topology runs twice, once per VARIANTS entry: "local-offload" is the above;
"s3" stores the bytes in a bucket of a moto S3 server (a subprocess on a loopback port)
with DOWNLOAD_OFFLOAD=off, so gunicorn streams each download from the bucket through nginx
and deletes the object when the response closes (the task the claim enqueues is the net).
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
from urllib.parse import urlsplit

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
PURGE_DEADLINE = 20.0  # the purge task runs PURGE_AFTER_LAST_DOWNLOAD=1 s after the claim
STORAGE_NAME = re.compile(r"shares/[0-9a-f]{32}")


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
    entries = access_log_lines(topology, "POST", "/api/v1/shares/<token>/download")
    assert len(entries) == 1, f"one redacted download entry expected in {topology.access_log}"
    logged = entries[0]
    assert logged["status"] == "200"
    assert_sent_by_the_right_server(topology, logged, len(payload))

    again = requests.post(f"{topology.nginx_url}{download_path}", timeout=REQUEST_TIMEOUT)
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "gone"

    topology.processes.wait_until(
        f"the bytes deleted from storage ({topology.variant.name})",
        lambda: stored not in stored_names(topology),
        PURGE_DEADLINE,
    )
    # No token, no manage token, no file name in any log: nginx's, gunicorn's, Celery's.
    every_log = topology.every_log()
    assert request_id in topology.access_log.read_text()
    for secret in (token, manage_token, "quarterly"):
        assert secret not in every_log, f"{secret!r} is in a log"


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
