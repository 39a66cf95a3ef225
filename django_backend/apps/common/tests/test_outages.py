"""Readiness and the request path when a dependency is down, in real processes.

Each scenario runs the app in a subprocess whose settings come from its environment, as in
production (DEBUG off, behind a TLS proxy), with one dependency made unreachable for real:
a closed port for PostgreSQL or Redis, a MEDIA_ROOT below a regular file, or a local server
that accepts connections and never answers (a hung dependency). The subprocess drives the
app with Django's test client and prints what it saw as JSON for the assertions here.

That readiness answers although a dependency hangs is shown by its checks giving up on their
own (PostgreSQL's connect_timeout, the checks' CHECK_TIMEOUT), never by a clock. The whole
site during a database or broker outage, through gunicorn, is in tests/test_*_outage.py.
"""

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

CACHE_GAVE_UP = "ConnectionError: the cache did not return what was stored"
CLOSED_PORT = 1  # nothing listens on tcpmux: connections are refused at once
CONTENT = b"sent while Redis was down\n" + bytes(range(256))

PROBE = r"""
import base64, json, os, sys

import django

django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

steps = json.loads(sys.argv[1])
# As behind the TLS-terminating proxy of a production deployment.
client = Client(raise_request_exception=False, headers={"X-Forwarded-Proto": "https"})
out = {}
if steps.get("migrate"):
    call_command("migrate", verbosity=0)
if steps.get("ready"):
    response = client.get("/health/ready/")
    out["ready"] = {"status": response.status_code, "body": response.json()}
if "upload" in steps:
    content = base64.b64decode(steps["upload"])
    upload = client.post("/api/v1/shares", {"file": SimpleUploadedFile("notes.bin", content)})
    out["upload"] = {"status": upload.status_code, "body": upload.json()}
    if upload.status_code == 201:
        download = client.post(f"/api/v1/shares/{upload.json()['token']}/download")
        body = b"".join(download.streaming_content) if download.streaming else download.content
        out["download"] = {"status": download.status_code, "body": base64.b64encode(body).decode()}
print("RESULT " + json.dumps(out), flush=True)
sys.stderr.flush()
# Without waiting for checks still hanging in their threads: what they would add is not
# part of any answer.
os._exit(0)
"""


@dataclass
class Outcome:
    results: dict
    stderr: str

    @property
    def ready(self) -> dict:
        return self.results["ready"]

    @property
    def failing(self) -> set[str]:
        """The critical checks readiness names as failed."""
        checks = self.ready["body"]["checks"]
        return {name for name, check in checks.items() if check["critical"] and not check["ok"]}


def launch(tmp: Path, steps: dict, **environment: str) -> subprocess.Popen:
    tmp.mkdir(parents=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp / "media"),
        "FILE_UPLOAD_TEMP_DIR": "",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "STORAGE_BACKEND": "local",
        **environment,
    }
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, json.dumps(steps)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(process: subprocess.Popen) -> Outcome:
    stdout, stderr = process.communicate(timeout=60)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"the probe failed:\n{stdout}\n{stderr}"
    return Outcome(results=json.loads(lines[-1].removeprefix("RESULT ")), stderr=stderr)


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port where connections are accepted by the kernel and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        yield listener.getsockname()[1]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, silent_port) -> dict[str, Outcome]:
    """Every scenario, run side by side (each is a few seconds of waiting on timeouts)."""
    root = tmp_path_factory.mktemp("outages")
    blocker = root / "blocker"
    blocker.write_text("a regular file, so nothing can be created below it")
    upload = {"upload": base64.b64encode(CONTENT).decode()}
    processes = {
        "database refused": launch(
            root / "database-refused",
            {"ready": True},
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{CLOSED_PORT}/onetimeshare",
        ),
        "database hangs": launch(
            root / "database-hangs",
            {"ready": True},
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{silent_port}/onetimeshare",
        ),
        "redis refused": launch(
            root / "redis-refused",
            {"migrate": True, "ready": True, **upload},
            REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/0",
        ),
        "redis hangs": launch(
            root / "redis-hangs",
            {"migrate": True, "ready": True},
            REDIS_URL=f"redis://127.0.0.1:{silent_port}/0",
        ),
        "storage unusable": launch(
            root / "storage-unusable",
            {"migrate": True, "ready": True, **upload},
            MEDIA_ROOT=str(blocker / "media"),
        ),
    }
    return {name: collect(process) for name, process in processes.items()}


def test_readiness_answers_503_naming_the_database_when_it_refuses(outcomes):
    outcome = outcomes["database refused"]

    assert outcome.ready["status"] == 503
    assert outcome.ready["body"]["status"] == "fail"
    assert outcome.failing == {"database"}
    assert "Connection refused" in outcome.ready["body"]["checks"]["database"]["error"]


def test_readiness_answers_503_naming_cache_and_broker_when_redis_refuses(outcomes):
    outcome = outcomes["redis refused"]

    assert outcome.ready["status"] == 503
    assert outcome.failing == {"cache", "broker"}
    checks = outcome.ready["body"]["checks"]
    assert checks["database"]["ok"] is True
    assert checks["storage"]["ok"] is True


def test_readiness_answers_503_naming_storage_when_media_root_is_below_a_file(outcomes):
    outcome = outcomes["storage unusable"]

    assert outcome.ready["status"] == 503
    assert outcome.failing == {"storage"}


@pytest.mark.parametrize(
    "scenario",
    ["database refused", "database hangs", "redis refused", "redis hangs", "storage unusable"],
)
def test_readiness_answers_503_whatever_fails(outcomes, scenario):
    outcome = outcomes[scenario]

    assert outcome.ready["status"] == 503
    assert outcome.ready["body"]["status"] == "fail"


def test_readiness_names_a_hung_dependency_and_gives_up_on_it(outcomes):
    database = outcomes["database hangs"]
    redis = outcomes["redis hangs"]

    assert database.failing == {"database"}
    # Given up by PostgreSQL's connect_timeout, not waited for.
    assert "timeout" in database.ready["body"]["checks"]["database"]["error"]
    assert redis.failing == {"cache", "broker"}
    # Given up by the checks' own deadline (or the client's socket timeout, whichever is
    # first): the cache's client gives up after 0.5 s and says it got nothing back.
    checks = redis.ready["body"]["checks"]
    assert "timeout" in checks["broker"]["error"].replace("timed out", "timeout").lower()
    assert checks["cache"]["error"] in {"timed out", CACHE_GAVE_UP}


def test_upload_and_download_succeed_while_redis_refuses(outcomes):
    outcome = outcomes["redis refused"]

    assert outcome.results["upload"]["status"] == 201, outcome.results["upload"]
    assert outcome.results["download"]["status"] == 200
    assert base64.b64decode(outcome.results["download"]["body"]) == CONTENT
    # The claim's purge task could not be sent: logged, not raised.
    assert "Could not enqueue apps.shares.tasks.purge_share" in outcome.stderr


def test_upload_answers_503_not_500_when_storage_is_unusable(outcomes):
    upload = outcomes["storage unusable"].results["upload"]

    assert upload["status"] == 503
    assert upload["body"]["error"]["code"] == "unavailable"
