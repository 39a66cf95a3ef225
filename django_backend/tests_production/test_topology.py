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
Every test runs against both; where they differ, a helper asks the Variant.

Every wait has a deadline; every process is stopped and the database dropped whatever
happens. Needs nginx, PostgreSQL (TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432)
and Redis on 127.0.0.1:6379: skipped without them, failed in CI (REQUIRE_POSTGRES=1). Runs
once per `make test`: in the PostgreSQL pass, not again in the SQLite one.
"""

import contextlib
import http.client
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import psycopg
import pytest
import redis
import requests
from botocore.config import Config
from conftest import VENV_BIN, loopback_server_env

from .support import MAIN_TEMPLATE, nginx_binary, require, write_config

# Once per `make test`, in the PostgreSQL pass: the topology brings its own database.
pytestmark = [pytest.mark.production, pytest.mark.postgresql]

REPO_DIR = Path(__file__).resolve().parents[2]
DJANGO_DIR = REPO_DIR / "django_backend"
ENTRYPOINT = REPO_DIR / "scripts" / "entrypoint.sh"
STATIC_ROOT = REPO_DIR / "var" / "static"  # fixed in settings; collectstatic fills it

REDIS_SERVER = "redis://127.0.0.1:6379"
# Others' tests use Redis databases 5 and 6; this one claims one of the high ones (a marker
# key, so that two runs at once do not share a broker), flushed before and after.
REDIS_DATABASES = list(range(10, 16))
REDIS_CLAIM_KEY = "ots-topology-test-claim"
MAX_UPLOAD_SIZE = 8 * 1024**2
RACERS = 60

START_DEADLINE = 90.0  # seconds: two entrypoints migrating a fresh database, collectstatic
JOBS_DEADLINE = 30.0  # beat -> broker -> worker -> database, with PURGE_INTERVAL=2
PURGE_DEADLINE = 20.0  # the purge task runs PURGE_AFTER_LAST_DOWNLOAD=1 s after the claim
REQUEST_TIMEOUT = 30.0
MOTO_DEADLINE = 30.0  # moto_server answers within a second or two
STORAGE_NAME = re.compile(r"shares/[0-9a-f]{32}")

S3_REGION = "us-east-1"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class Variant:
    """What differs between the two runs of the topology, and what the tests expect of it."""

    name: str
    env: dict[str, str]  # on top of the common environment of every app process
    s3: bool  # the bytes live in a bucket of a moto S3 server, not under MEDIA_ROOT
    offloaded: bool  # nginx sends the bytes from disk (X-Accel-Redirect), not gunicorn


VARIANTS = [
    Variant(
        "local-offload",
        {"STORAGE_BACKEND": "local", "DOWNLOAD_OFFLOAD": "nginx"},
        s3=False,
        offloaded=True,
    ),
    Variant(
        # AWS_S3_ENDPOINT_URL and AWS_STORAGE_BUCKET_NAME are added once moto is up.
        "s3",
        {
            "STORAGE_BACKEND": "s3",
            "DOWNLOAD_OFFLOAD": "off",  # nginx offload needs local files
            **S3_CREDENTIALS,
            "AWS_S3_REGION_NAME": S3_REGION,
            "AWS_S3_ADDRESSING_STYLE": "path",
        },
        s3=True,
        offloaded=False,
    ),
]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Topology:
    variant: Variant
    nginx_url: str  # nginx, in front of gunicorn A
    second_url: str  # gunicorn B, directly
    media_root: Path
    logs: Path
    access_log: Path
    error_log: Path
    env: dict[str, str]
    bucket: str = ""  # the s3 variant's bucket
    s3: Any = None  # a boto3 S3 client of moto's, to look into the bucket
    processes: list[Process] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def every_log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(name: str, args: list[str], *, env: dict[str, str], logs: Path) -> Process:
    """Start a process in its own session (so that its whole group can be stopped)."""
    log = logs / f"{name}.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(
            args,
            cwd=DJANGO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log)


def stop(processes: list[Process], timeout: float = 10.0) -> None:
    """SIGTERM to every process group at once, then SIGKILL to whatever is left of them."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    # A leader that ignored SIGTERM, or a child that outlived its leader.
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=timeout)


def wait_until(
    what: str, check: Callable[[], bool], *, deadline: float, topology: Topology
) -> float:
    """Poll `check` until it holds; fail with the processes' logs at the deadline."""
    started = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - started < deadline:
        for process in topology.processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited while waiting for {what}:\n{topology.tails()}")
        try:
            if check():
                return time.monotonic() - started
        except (requests.RequestException, OSError) as exc:
            last_error = exc
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {deadline} s (last error: {last_error})\n{topology.tails()}")


def postgres_admin() -> dict:
    url = urlsplit(os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/"))
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "dbname": "postgres",
        "connect_timeout": 3,
    }


def database_url(admin: dict, name: str) -> str:
    auth = admin["user"] + (f":{quote(admin['password'], safe='')}" if admin["password"] else "")
    return f"postgres://{auth}@{admin['host']}:{admin['port']}/{name}"


def claim_redis_database(run_id: str) -> tuple[int, redis.Redis]:
    """A spare Redis database that no other run of this test is using, flushed."""
    for number in random.sample(REDIS_DATABASES, len(REDIS_DATABASES)):
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}", socket_connect_timeout=3)
        # A run that crashed without its teardown holds the claim 15 minutes at most.
        if client.set(REDIS_CLAIM_KEY, run_id, nx=True, ex=900):
            client.flushdb()
            client.set(REDIS_CLAIM_KEY, run_id, ex=900)
            return number, client
        client.close()
    pytest.fail(f"Redis databases {REDIS_DATABASES} are all claimed by other runs of this test")


def ready(url: str) -> bool:
    return requests.get(url, timeout=5).status_code == 200


def periodic_jobs_ran(url: str) -> bool:
    checks = requests.get(url, timeout=5).json()["checks"]
    return checks["periodic_jobs"]["ok"]


def s3_client(endpoint_url: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_REGION,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=3,
            read_timeout=10,
            retries={"max_attempts": 1},
        ),
    )


def start_s3(topology: Topology, run_id: str, logs: Path) -> dict[str, str]:
    """moto_server on a free loopback port, with an empty bucket; the app's settings for it."""
    endpoint_url = f"http://127.0.0.1:{free_port()}"
    port = str(urlsplit(endpoint_url).port)
    moto_server = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", port]
    # Its log (a line per request) is one of those that must hold no token.
    topology.processes.append(start("moto-s3", moto_server, env=topology.env, logs=logs))
    # GET / is ListBuckets, which moto answers without a signature.
    topology.timings["moto answering"] = wait_until(
        "moto_server", lambda: ready(endpoint_url), deadline=MOTO_DEADLINE, topology=topology
    )
    topology.bucket, topology.s3 = f"ots-topology-{run_id}", s3_client(endpoint_url)
    topology.s3.create_bucket(Bucket=topology.bucket)
    return {"AWS_S3_ENDPOINT_URL": endpoint_url, "AWS_STORAGE_BUCKET_NAME": topology.bucket}


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.name)
def topology(request, tmp_path_factory) -> Iterator[Topology]:
    variant: Variant = request.param
    nginx = nginx_binary()
    require(nginx is not None, "nginx is not installed")
    admin = postgres_admin()
    try:
        psycopg.connect(**admin).close()
    except psycopg.Error as exc:
        require(False, f"PostgreSQL is not reachable at {admin['host']}:{admin['port']}: {exc}")
    run_id = secrets.token_hex(6)
    try:
        redis_db, broker = claim_redis_database(run_id)
    except redis.RedisError as exc:
        require(False, f"Redis is not reachable at {REDIS_SERVER}: {exc}")

    root = tmp_path_factory.mktemp(f"topology-{variant.name}")
    logs, media_root, upload_tmp = root / "logs", root / "media", root / "upload-tmp"
    for directory in (logs, media_root, upload_tmp):
        directory.mkdir()
    database = f"ots_topology_{run_id}"
    nginx_port, port_a, port_b = free_port(), free_port(), free_port()
    env = loopback_server_env(
        root,
        DATABASE_URL=database_url(admin, database),
        REDIS_URL=f"{REDIS_SERVER}/{redis_db}",
        CELERY_BROKER_URL=f"{REDIS_SERVER}/{redis_db}",
        MEDIA_ROOT=str(media_root),
        FILE_UPLOAD_TEMP_DIR=str(upload_tmp),
        MAX_UPLOAD_SIZE=str(MAX_UPLOAD_SIZE),
        DOWNLOAD_OFFLOAD_LOCATION="/_protected/",
        CLIENT_IP_HEADER="HTTP_X_REAL_IP",
        PURGE_AFTER_LAST_DOWNLOAD="1",
        PURGE_INTERVAL="2",
        RATE_LIMIT_UPLOADS="100/h",
        RATE_LIMIT_DOWNLOADS="1000/h",
        LOG_LEVEL="INFO",
        **variant.env,  # STORAGE_BACKEND, DOWNLOAD_OFFLOAD, the S3 settings
    )
    topology = Topology(
        variant=variant,
        nginx_url=f"http://127.0.0.1:{nginx_port}",
        second_url=f"http://127.0.0.1:{port_b}",
        media_root=media_root,
        logs=logs,
        access_log=logs / "nginx-access.log",
        error_log=logs / "nginx-error.log",
        env=env,
    )
    print(f"\nproduction topology ({variant.name}) in {root}")

    started = time.monotonic()
    try:
        if variant.s3:
            env.update(start_s3(topology, run_id, logs))
        with psycopg.connect(**admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        config = write_config(
            root / "nginx",
            MAIN_TEMPLATE,
            {
                "NGINX_LISTEN": f"127.0.0.1:{nginx_port}",
                "UPSTREAM": f"127.0.0.1:{port_a}",
                "STATIC_ROOT": str(STATIC_ROOT),
                "MEDIA_ROOT": str(media_root),
                "CLIENT_MAX_BODY_SIZE": str(MAX_UPLOAD_SIZE + 1024**2),
                "REAL_IP_FROM": "127.0.0.1",
            },
            error_log=topology.error_log,
        )
        # The template logs to /dev/stdout, as in the container: here, the access log file.
        topology.processes.append(
            start(
                "nginx-access",
                [nginx, "-p", str(config.parent), "-c", str(config), "-e", str(topology.error_log)],
                env=env,
                logs=logs,
            )
        )
        gunicorn = ["gunicorn", "core.wsgi", "--worker-class", "gthread", "--workers", "2"]
        gunicorn += ["--threads", "8", "--graceful-timeout", "5"]
        for name, port in (("gunicorn-a", port_a), ("gunicorn-b", port_b)):
            args = [str(ENTRYPOINT), *gunicorn, "--bind", f"127.0.0.1:{port}"]
            topology.processes.append(start(name, args, env=env, logs=logs))

        topology.timings["nginx and gunicorn A ready"] = wait_until(
            "readiness through nginx",
            lambda: ready(f"{topology.nginx_url}/health/ready/"),
            deadline=START_DEADLINE,
            topology=topology,
        )
        wait_until(
            "gunicorn B",
            lambda: ready(f"{topology.second_url}/health/"),
            deadline=START_DEADLINE,
            topology=topology,
        )
        topology.timings["both gunicorns ready"] = time.monotonic() - started

        # As in docker-compose.yml: worker and beat once web is healthy, schema left alone.
        background = {**env, "SKIP_MIGRATIONS": "1", "SKIP_COLLECTSTATIC": "1"}
        celery = [str(ENTRYPOINT), "celery", "-A", "core"]
        worker = [*celery, "worker", "--pool", "solo", "--loglevel", "INFO"]
        worker += ["--without-gossip", "--without-mingle"]
        beat = [*celery, "beat", "--loglevel", "INFO", "--enable-remote-control"]
        beat += ["-s", str(root / "celerybeat-schedule")]
        topology.processes.append(start("celery-worker", worker, env=background, logs=logs))
        topology.processes.append(start("celery-beat", beat, env=background, logs=logs))
        wait_until(
            "the periodic purge job (beat, broker, worker, database)",
            lambda: periodic_jobs_ran(f"{topology.nginx_url}/health/ready/"),
            deadline=JOBS_DEADLINE,
            topology=topology,
        )
        topology.timings["worker and beat running jobs"] = time.monotonic() - started

        yield topology
    finally:
        stop(topology.processes)
        try:
            with psycopg.connect(**admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            broker.flushdb()  # the claim marker goes with it
            broker.close()
        topology.timings["total, with teardown"] = time.monotonic() - started
        print(
            f"timings ({variant.name}, s):",
            {name: round(value, 1) for name, value in topology.timings.items()},
        )


def upload(topology: Topology, payload: bytes, name: str) -> dict:
    response = requests.post(
        f"{topology.nginx_url}/api/v1/shares",
        files={"file": (name, payload, "application/pdf")},
        data={"max_downloads": "1"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def stored_names(topology: Topology) -> set[str]:
    """The storage names (shares/<32 hex>) of the stored bytes: files, or the bucket's keys."""
    if topology.variant.s3:
        listing = topology.s3.list_objects_v2(Bucket=topology.bucket, Prefix="shares/")
        return {item["Key"] for item in listing.get("Contents", [])}
    shares = topology.media_root / "shares"
    if not shares.exists():
        return set()
    return {f"shares/{path.name}" for path in shares.iterdir() if path.is_file()}


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


def access_log_lines(topology: Topology, method: str, path: str) -> list[dict[str, str]]:
    """The access log's entries for one request, as dicts of its key=value fields."""
    entries = []
    for line in topology.access_log.read_text().splitlines():
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        if fields.get("method") == method and fields.get("path") == path:
            entries.append(fields)
    return entries


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

    wait_until(
        f"the bytes deleted from storage ({topology.variant.name})",
        lambda: stored not in stored_names(topology),
        deadline=PURGE_DEADLINE,
        topology=topology,
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
