"""Helpers of the production tests (tests_production): when to skip, and the production
topology on loopback (its variants, its database, broker and bucket, what it stored and
logged). The processes themselves are started by the harness in processes.py, and nginx
with the repository's templates through deploy/nginx/nginx_standalone.py."""

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
import redis
import requests
from botocore.config import Config

from .env import REPO_DIR
from .processes import Processes, access_log_entries, answers, free_port, moto_server

STATIC_ROOT = REPO_DIR / "var" / "static"  # fixed in settings; collectstatic fills it
REDIS_SERVER = "redis://127.0.0.1:6379"
# Others' tests use Redis databases 5 and 6; the topology claims one of the high ones (a
# marker key, so that two runs at once do not share a broker), flushed before and after.
REDIS_DATABASES = list(range(10, 16))
REDIS_CLAIM_KEY = "ots-topology-test-claim"
MAX_UPLOAD_SIZE = 8 * 1024**2
REQUEST_TIMEOUT = 30.0
MOTO_DEADLINE = 30.0  # seconds; moto_server answers within a second or two

S3_REGION = "us-east-1"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def require(condition: bool, reason: str) -> None:
    """Skip when something the test needs is missing, but fail in CI (REQUIRE_POSTGRES=1),
    where .ci/run has installed and started everything and nothing may be skipped."""
    if condition:
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (required: REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


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
class Topology:
    variant: Variant
    nginx_url: str  # nginx, in front of gunicorn A
    second_url: str  # gunicorn B, directly
    media_root: Path
    logs: Path
    env: dict[str, str]
    processes: Processes
    bucket: str = ""  # the s3 variant's bucket
    s3: Any = None  # a boto3 S3 client of moto's, to look into the bucket
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def access_log(self) -> Path:
        return self.logs / "nginx-access.log"

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def every_log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))


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
    """A spare Redis database that no other run of the topology is using, flushed."""
    for number in random.sample(REDIS_DATABASES, len(REDIS_DATABASES)):
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}", socket_connect_timeout=3)
        # A run that crashed without its teardown holds the claim 15 minutes at most.
        if client.set(REDIS_CLAIM_KEY, run_id, nx=True, ex=900):
            client.flushdb()
            client.set(REDIS_CLAIM_KEY, run_id, ex=900)
            return number, client
        client.close()
    pytest.fail(f"Redis databases {REDIS_DATABASES} are all claimed by other runs of this test")


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


def start_s3(topology: Topology, run_id: str) -> dict[str, str]:
    """moto_server on a free loopback port, with an empty bucket; the app's settings for it."""
    endpoint_url = f"http://127.0.0.1:{free_port()}"
    # Its log (a line per request) is one of those that must hold no token.
    processes = topology.processes
    processes.start("moto-s3", moto_server(urlsplit(endpoint_url).port), env=topology.env)
    # GET / is ListBuckets, which moto answers without a signature.
    processes.wait_until("moto_server", lambda: answers(endpoint_url), MOTO_DEADLINE)
    topology.bucket, topology.s3 = f"ots-topology-{run_id}", s3_client(endpoint_url)
    topology.s3.create_bucket(Bucket=topology.bucket)
    return {"AWS_S3_ENDPOINT_URL": endpoint_url, "AWS_STORAGE_BUCKET_NAME": topology.bucket}


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


def access_log_lines(topology: Topology, method: str, path: str) -> list[dict[str, str]]:
    """The access log's entries for one request, as dicts of its key=value fields."""
    return [
        entry
        for entry in access_log_entries(topology.access_log)
        if entry.get("method") == method and entry.get("path") == path
    ]
