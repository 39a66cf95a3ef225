"""The broker down: revokes and last downloads still answer, and only the first one tries it.

A real gunicorn (one worker: one process's breaker to watch) reaches its Celery broker, Redis,
through a TCP proxy which the test cuts: refused (Redis is down) or hung (connections
accepted and never answered). The cache stays in memory: what a dead Redis does to the rate
limiter's counters is not the subject here.

Each last download and each revoke enqueues a purge. After the first send fails, the process
sends nothing for BROKER_RETRY_AFTER seconds (an hour here), so the requests after it neither
wait for the broker nor log about it: the broker's proxy accepts no further connection, and
the log holds one warning. How long a request waits is measured in bench/, never asserted
here; the recovery is tested in test_broker_breaker.py.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tests.support.env import loopback_server_env
from tests.support.processes import Process, Processes, answers, free_port, gunicorn
from tests.support.production import REDIS_SERVER, claim_redis_database, require
from tests.support.tcp_proxy import TcpProxy

START_DEADLINE = 60.0  # seconds: migrate a fresh database, collect static files, boot
REQUEST_TIMEOUT = 30.0
REDIS_ADDRESS = ("127.0.0.1", 6379)
ENQUEUE_FAILED = "Could not enqueue apps.shares.tasks.purge_share"


@dataclass
class Site:
    url: str
    process: Process
    broker: TcpProxy
    cut_by: str  # "refuse" or "hang"

    def post(self, path: str, **options) -> requests.Response:
        options.setdefault("allow_redirects", False)
        return requests.post(self.url + path, timeout=REQUEST_TIMEOUT, **options)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, timeout=REQUEST_TIMEOUT)

    def upload(self, content: bytes) -> dict:
        response = self.post("/api/v1/shares", files={"file": ("notes.txt", content)})
        assert response.status_code == 201, response.text
        return response.json()

    def cut(self, how: str) -> None:
        getattr(self.broker, how)()


@pytest.fixture(scope="module", params=["refuse", "hang"])
def site(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A gunicorn of its own per way of cutting: its breaker, once open, stays open."""
    try:
        redis_db, client = claim_redis_database(secrets.token_hex(6))
    except redis.RedisError as exc:
        require(False, f"Redis is not reachable at {REDIS_SERVER}: {exc}")
    root: Path = tmp_path_factory.mktemp(f"broker-outage-{request.param}")
    upload_tmp = root / "upload-tmp"
    upload_tmp.mkdir()
    try:
        with TcpProxy(REDIS_ADDRESS) as broker, Processes(root) as processes:
            port = free_port()
            env = loopback_server_env(
                root,
                DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
                MEDIA_ROOT=str(root / "media"),
                FILE_UPLOAD_TEMP_DIR=str(upload_tmp),
                CELERY_BROKER_URL=f"redis://127.0.0.1:{broker.port}/{redis_db}",
                BROKER_RETRY_AFTER="3600",
                RATE_LIMIT_UPLOADS="1000/h",
                RATE_LIMIT_DOWNLOADS="1000/h",
                LOG_LEVEL="INFO",
            )
            command = gunicorn(
                port,
                workers=1,
                threads=4,
                options=["--graceful-timeout", "2", "--no-control-socket"],
            )
            site = Site(
                url=f"http://127.0.0.1:{port}",
                process=processes.start("gunicorn", command, env=env),
                broker=broker,
                cut_by=request.param,
            )
            processes.wait_until(
                "gunicorn to answer", lambda: answers(f"{site.url}/health/"), START_DEADLINE
            )
            yield site
    finally:
        client.flushdb()  # the tasks sent before the cut, and the claim marker
        client.close()


def test_after_one_failed_send_revokes_and_last_downloads_do_not_try_the_broker(site):
    first, second, third, fourth = (site.upload(f"share {n}\n".encode()) for n in range(4))
    offset = len(site.process.log_text())

    site.cut(site.cut_by)
    try:
        # The first send of the outage tries the broker and fails.
        download = site.post(f"/api/v1/shares/{first['token']}/download")
        tried = site.broker.accepted
        # The sends of the next requests are left out.
        revoked = site.post(f"/m/{second['manage_token']}/revoke")
        deleted = site.delete(f"/api/v1/manage/{third['manage_token']}")
        # The page's Download button: the claim, then its download session (a 303).
        last_download = site.post(f"/s/{fourth['token']}", allow_redirects=True)
        tried_after = site.broker.accepted
    finally:
        site.cut("forward")

    assert download.status_code == 200
    assert download.content == b"share 0\n"
    assert revoked.status_code == 303
    assert deleted.status_code == 204
    assert last_download.status_code == 200
    assert last_download.content == b"share 3\n"
    log = site.process.log_text()[offset:]
    # One line about the broker: the failed send's. The sends left out (and any further
    # attempt, which would log that the broker still fails) would add lines.
    broker_lines = [line for line in log.splitlines() if "logger=core.celery" in line]
    assert len(broker_lines) == 1, log
    assert "level=WARNING" in broker_lines[0] and ENQUEUE_FAILED in broker_lines[0]
    assert "Traceback" not in log
    # Not one connection to the broker after the first send failed (a refused connection is
    # never accepted; a hung one is, once).
    assert tried_after == tried
    if site.cut_by == "hang":
        assert tried > 0
