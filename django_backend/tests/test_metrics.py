"""/metrics through the real thing: gunicorn with two worker processes, a Celery worker and a
management command, each counting in a process of its own.

One site for the module: gunicorn (through scripts/entrypoint.sh, so through
gunicorn.conf.py's hooks) with PROMETHEUS_MULTIPROC_DIR in a folder of its own, and a Celery
worker with a folder of its own that serves its counters at WORKER_METRICS_BIND, as in a
container of its own. Both use one claimed Redis database (the broker, and the rate-limit
counters that every gunicorn worker shares). The test drives uploads of every kind and
downloads (some refused), lets a share expire and the purge job run, then scrapes both and
checks that every count adds up, whichever gunicorn worker answers.
"""

import io
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from celery import Celery
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from tusclient.client import TusClient

from tests.support.env import DJANGO_DIR, VENV_BIN, loopback_server_env
from tests.support.processes import (
    BACKGROUND_ENV,
    Process,
    Processes,
    answers,
    celery_worker,
    free_port,
    gunicorn,
)
from tests.support.production import REDIS_SERVER, claim_redis_database, require

TOKEN = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START_DEADLINE = 120.0  # seconds: migrate a fresh SQLite database, collect static files
DEADLINE = 30.0  # seconds for a task to run, an expiry to pass; only bounds a broken test
TIMEOUT = 30.0  # one HTTP request
# Every claim attempt counts against the download limit, whatever its outcome: the test
# makes this many before the one that must be refused. Per day, so that no window ends
# during the test.
CLAIMS_BEFORE_LIMIT = 11

# What a previous run left: counts of a process that is gone (cleared when gunicorn
# starts), and of one still running, this test's own (kept).
DEAD_PROCESS_SHARES = 1000
LIVE_PROCESS_SHARES = 100

Samples = dict[tuple[str, frozenset], float]


@dataclass
class Site:
    url: str
    worker_metrics_url: str
    web: Process
    web_dir: Path
    worker_dir: Path
    env: dict[str, str]
    broker_url: str
    root: Path
    processes: Processes
    sizes: dict[str, int] = field(default_factory=dict)


def plant_counter(directory: Path, pid: int, via: str, value: float) -> None:
    """A counter file as a process `pid` of an earlier run wrote it."""
    store = MmapedDict(str(directory / f"counter_{pid}.db"))
    help_text = "Shares created, by how the file arrived."
    key = mmap_key(
        "onetimeshare_shares_created",
        "onetimeshare_shares_created_total",
        ["via"],
        [via],
        help_text,
    )
    store.write_value(key, value, 0.0)
    store.close()


def a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    try:
        redis_db, client = claim_redis_database(secrets.token_hex(6))
    except Exception as exc:  # redis.RedisError, or nothing listens
        require(False, f"Redis is not reachable at {REDIS_SERVER}: {exc}")
    root: Path = tmp_path_factory.mktemp("metrics")
    web_dir, worker_dir = root / "web-metrics", root / "worker-metrics"
    web_dir.mkdir()
    worker_dir.mkdir()
    plant_counter(web_dir, a_dead_pid(), "page", DEAD_PROCESS_SHARES)
    plant_counter(web_dir, os.getpid(), "command", LIVE_PROCESS_SHARES)
    broker_url = f"{REDIS_SERVER}/{redis_db}"
    env = loopback_server_env(
        root,
        DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
        MEDIA_ROOT=str(root / "media"),
        REDIS_URL=broker_url,
        RATE_LIMIT_UPLOADS="1000/h",
        RATE_LIMIT_DOWNLOADS=f"{CLAIMS_BEFORE_LIMIT}/d",
        MIN_EXPIRES_IN="1",
        PURGE_AFTER_LAST_DOWNLOAD="0",
        METRICS_TOKEN=TOKEN,
        LOG_LEVEL="WARNING",
    )
    port, worker_port = free_port(), free_port()
    try:
        with Processes(root) as processes:
            web = processes.start(
                "gunicorn",
                gunicorn(port, workers=2, options=["--graceful-timeout", "2"]),
                env={**env, "PROMETHEUS_MULTIPROC_DIR": str(web_dir)},
            )
            url = f"http://127.0.0.1:{port}"
            processes.wait_until(
                "gunicorn to answer", lambda: answers(f"{url}/health/"), START_DEADLINE
            )
            processes.start(
                "worker",
                celery_worker(),
                env={
                    **env,
                    **BACKGROUND_ENV,
                    "PROMETHEUS_MULTIPROC_DIR": str(worker_dir),
                    "WORKER_METRICS_BIND": f"127.0.0.1:{worker_port}",
                },
            )
            worker_metrics_url = f"http://127.0.0.1:{worker_port}/metrics"
            processes.wait_until(
                "the worker to serve its metrics",
                lambda: requests.get(worker_metrics_url, headers=AUTH, timeout=5).ok,
                START_DEADLINE,
            )
            site = Site(
                url, worker_metrics_url, web, web_dir, worker_dir, env, broker_url, root, processes
            )
            traffic(site)
            yield site
    finally:
        client.flushdb()
        client.close()


# --- the traffic -------------------------------------------------------------------------


def api_upload(site: Site, name: str, size: int, **options: str) -> dict:
    response = requests.post(
        f"{site.url}/api/v1/shares",
        files={"file": (f"{name}.bin", secrets.token_bytes(size))},
        data=options,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    site.sizes[name] = size
    return response.json()


def put_upload(site: Site, name: str, size: int) -> dict:
    response = requests.put(
        f"{site.url}/api/v1/shares/{name}.bin", data=secrets.token_bytes(size), timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    site.sizes[name] = size
    return response.json()


def page_upload(site: Site, name: str, size: int) -> dict:
    session = requests.Session()
    form = session.get(f"{site.url}/", timeout=TIMEOUT)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    response = session.post(
        f"{site.url}/",
        data={"csrfmiddlewaretoken": csrf, "expires_in": "86400", "max_downloads": "1"},
        files={"file": (f"{name}.bin", secrets.token_bytes(size))},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 303, response.text
    manage_token = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    site.sizes[name] = size
    return requests.get(f"{site.url}/api/v1/manage/{manage_token}", timeout=TIMEOUT).json()


def tus_upload(site: Site, name: str, size: int) -> dict:
    uploader = TusClient(f"{site.url}/api/v1/uploads/").uploader(
        file_stream=io.BytesIO(secrets.token_bytes(size)),
        chunk_size=size // 2 + 1,
        metadata={"filename": f"{name}.bin"},
    )
    uploader.upload()
    site.sizes[name] = size
    return json.loads(uploader.request.response_content)


def command_upload(site: Site, name: str, size: int) -> None:
    path = site.root / f"{name}.bin"
    path.write_bytes(secrets.token_bytes(size))
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "create_share", str(path)],
        cwd=DJANGO_DIR,
        env={**site.env, "PROMETHEUS_MULTIPROC_DIR": str(site.web_dir)},
        capture_output=True,
        check=True,
        timeout=60,
    )
    site.sizes[name] = size


def claim(site: Site, share: dict, password: str | None = None) -> requests.Response:
    data = {} if password is None else {"password": password}
    return requests.post(
        f"{site.url}/api/v1/shares/{share['token']}/download", data=data, timeout=TIMEOUT
    )


def downloaded(site: Site, share: dict, password: str | None = None) -> bytes:
    response = claim(site, share, password)
    assert response.status_code == 200, response.text
    return response.content


def refused(site: Site, token: str, status: int, code: str, password: str | None = None) -> None:
    response = claim(site, {"token": token}, password)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def page_download_in_two_ranges(site: Site, share: dict) -> bytes:
    """The landing page's Download button, then the download session in two ranges (a
    download broken off and resumed)."""
    answer = requests.post(
        f"{site.url}/s/{share['token']}",
        data={"password": ""},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 303, answer.text
    session_url = requests.compat.urljoin(site.url, answer.headers["Location"])
    half = share["size"] // 2
    first = requests.get(session_url, headers={"Range": f"bytes=0-{half - 1}"}, timeout=TIMEOUT)
    rest = requests.get(session_url, headers={"Range": f"bytes={half}-"}, timeout=TIMEOUT)
    assert (first.status_code, rest.status_code) == (206, 206)
    return first.content + rest.content


def traffic(site: Site) -> None:
    plain = api_upload(site, "plain", 1000)
    protected = api_upload(site, "protected", 2000, password="sesame")
    twice = api_upload(site, "twice", 3000, max_downloads="2")
    expiring = api_upload(site, "expiring", 500, expires_in="1")
    revoked = api_upload(site, "revoked", 700)
    put = put_upload(site, "put", 4000)
    page = page_upload(site, "page", 5000)
    tus = tus_upload(site, "tus", 6000)
    command_upload(site, "command", 7000)

    refused(site, protected["token"], 401, "password_required")
    refused(site, protected["token"], 403, "wrong_password", password="open")
    served = [
        downloaded(site, plain),
        downloaded(site, protected, "sesame"),
        downloaded(site, twice),
        downloaded(site, twice),
        downloaded(site, page),
        downloaded(site, tus),
        page_download_in_two_ranges(site, put),
    ]
    assert sum(map(len, served)) == 1000 + 2000 + 2 * 3000 + 5000 + 6000 + 4000
    refused(site, plain["token"], 410, "gone")
    refused(site, "x" * 22, 404, "not_found")
    # The twelfth claim, on a share that could be downloaded.
    refused(site, revoked["token"], 429, "rate_limited")

    deleted = requests.delete(
        f"{site.url}/api/v1/manage/{revoked['manage_token']}", timeout=TIMEOUT
    )
    assert deleted.status_code == 204

    # The expiring share's time passes; then the purge job, as beat would send it, and one
    # task that fails.
    site.processes.wait_until(
        "the one-second share to expire",
        lambda: (
            requests.get(
                f"{site.url}/api/v1/shares/{expiring['token']}", timeout=TIMEOUT
            ).status_code
            == 410
        ),
        DEADLINE,
    )
    sender = Celery("metrics-test", broker=site.broker_url, set_as_current=False)
    try:
        sender.send_task("apps.shares.tasks.purge_shares")
        sender.send_task("apps.shares.tasks.purge_share", args=["not a share id"])
    finally:
        sender.close()
    # Seven purge_share tasks were sent by the web server (six last downloads, one revoke).
    site.processes.wait_until(
        "the worker to run every task",
        lambda: (
            (tasks := worker_samples(site))
            and tasks.get(
                (
                    "onetimeshare_tasks_total",
                    labels(task="apps.shares.tasks.purge_shares", outcome="succeeded"),
                )
            )
            == 1
            and tasks.get(
                (
                    "onetimeshare_tasks_total",
                    labels(task="apps.shares.tasks.purge_share", outcome="failed"),
                )
            )
            == 1
            and tasks.get(
                (
                    "onetimeshare_tasks_total",
                    labels(task="apps.shares.tasks.purge_share", outcome="succeeded"),
                )
            )
            == 7
        ),
        DEADLINE,
    )


# --- scraping ----------------------------------------------------------------------------


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def worker_samples(site: Site) -> Samples:
    response = scrape(site.worker_metrics_url, **AUTH)
    assert response.status_code == 200
    return parse(response.text)


def product(samples: Samples) -> Samples:
    """The service's own series (not django-prometheus' request figures, which each scrape
    changes)."""
    return {key: value for key, value in samples.items() if key[0].startswith("onetimeshare_")}


def scrapes_answered(directory: Path, pid: int) -> float:
    """How many /metrics requests gunicorn worker `pid` has counted, from its own file."""
    path = directory / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    return sum(
        value
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path))
        if json.loads(key)[1] == "django_http_requests_total_by_view_transport_method_total"
        and json.loads(key)[2].get("view") == "metrics"
    )


@pytest.fixture(scope="module")
def web(site: Site) -> Samples:
    """The web server's figures, the same in every scrape, once each gunicorn worker has
    answered at least one (each scrape a new connection, taken by whichever worker)."""
    workers = site.web.children()
    assert len(workers) == 2
    answers_seen: list[Samples] = []

    def every_worker_answered() -> bool:
        response = scrape(f"{site.url}/metrics", **AUTH)
        assert response.status_code == 200, response.text
        answers_seen.append(product(parse(response.text)))
        return all(scrapes_answered(site.web_dir, pid) for pid in workers)

    site.processes.wait_until(
        "each gunicorn worker to answer a scrape", every_worker_answered, DEADLINE
    )
    assert all(answer == answers_seen[0] for answer in answers_seen), "scrapes disagree"
    return answers_seen[-1]


@pytest.fixture(scope="module")
def worker(site: Site) -> Samples:
    return worker_samples(site)


def total(samples: Samples, name: str, **pairs: str) -> float:
    return samples.get((name, labels(**pairs)), 0.0)


def test_shares_created_are_counted_once_each_by_how_they_arrived(web, site):
    created = {
        via: total(web, "onetimeshare_shares_created_total", via=via)
        for via in ("api", "put", "page", "tus", "command")
    }

    # The dead process's file was cleared when gunicorn started; the live one's was kept.
    assert created == {"api": 5, "put": 1, "page": 1, "tus": 1, "command": 1 + LIVE_PROCESS_SHARES}
    sizes = site.sizes
    assert total(web, "onetimeshare_uploaded_bytes_total", via="api") == sum(
        sizes[name] for name in ("plain", "protected", "twice", "expiring", "revoked")
    )
    for via in ("put", "page", "tus", "command"):
        assert total(web, "onetimeshare_uploaded_bytes_total", via=via) == sizes[via]


def test_claims_granted_and_refused_add_up_across_workers(web):
    assert total(web, "onetimeshare_claims_granted_total") == 7
    refusals = {
        reason: total(web, "onetimeshare_claims_refused_total", reason=reason)
        for reason in ("gone", "not_found", "password_required", "wrong_password", "rate_limited")
    }
    assert refusals == dict.fromkeys(refusals, 1)


def test_bytes_served_are_the_bytes_downloaded(web, site):
    sizes = site.sizes
    downloaded_bytes = sum(sizes[n] for n in ("plain", "protected", "page", "tus", "put"))
    assert total(web, "onetimeshare_served_bytes_total") == downloaded_bytes + 2 * sizes["twice"]


def test_each_ending_is_counted_once_where_it_happens(web, worker):
    ended = {
        how: (
            total(web, "onetimeshare_shares_ended_total", how=how),
            total(worker, "onetimeshare_shares_ended_total", how=how),
        )
        for how in ("consumed", "expired", "revoked", "removed")
    }

    # Downloads and the revoke in the web server; the expiry noticed by the purge job.
    assert ended == {"consumed": (6, 0), "expired": (0, 1), "revoked": (1, 0), "removed": (0, 0)}


def both(web: Samples, worker: Samples, name: str, **pairs: str) -> float:
    """A count over the web server and the worker. A share's bytes are deleted by whichever
    gets there first, the request that ended it or the task it sent (a conditional update
    lets one of them record it): where is a race, how many is not."""
    return total(web, name, **pairs) + total(worker, name, **pairs)


def test_bytes_deleted_are_those_of_every_ended_share(web, worker, site):
    ended = ("plain", "protected", "twice", "put", "page", "tus", "revoked", "expiring")

    deleted = both(web, worker, "onetimeshare_deleted_bytes_total")

    assert deleted == sum(site.sizes[name] for name in ended)


def test_deletion_lag_is_observed_once_per_purged_share(web, worker):
    def observed(how: str) -> float:
        return both(web, worker, "onetimeshare_deletion_lag_seconds_count", how=how)

    assert [observed(how) for how in ("consumed", "expired", "revoked")] == [6, 1, 1]
    # Only the purge job could delete the expired share's bytes, after it expired.
    assert total(worker, "onetimeshare_deletion_lag_seconds_count", how="expired") == 1
    assert total(worker, "onetimeshare_deletion_lag_seconds_sum", how="expired") > 0


def test_gauges_are_read_from_the_database_by_the_web_server_only(web, worker, site):
    assert total(web, "onetimeshare_active_shares") == 1  # the command's share
    assert total(web, "onetimeshare_stored_shares") == 1
    assert total(web, "onetimeshare_stored_bytes") == site.sizes["command"]
    assert total(web, "onetimeshare_job_last_finished_timestamp_seconds", job="purge_shares") > 0
    assert not [key for key in worker if key[0] == "onetimeshare_active_shares"]


def test_the_worker_counts_its_tasks_by_outcome(worker):
    def tasks(task: str, outcome: str) -> float:
        return total(
            worker, "onetimeshare_tasks_total", task=f"apps.shares.tasks.{task}", outcome=outcome
        )

    assert tasks("purge_shares", "succeeded") == 1
    assert tasks("purge_share", "failed") == 1
    # No task retries today; every outcome of every task is there from the start.
    assert (
        "onetimeshare_tasks_total",
        labels(task="apps.shares.tasks.reconcile_storage", outcome="retried"),
    ) in worker


def test_request_figures_come_by_view(site):
    samples = parse(scrape(f"{site.url}/metrics", **AUTH).text)

    def responses(status: str, view: str, method: str) -> float:
        name = "django_http_responses_total_by_status_view_method_total"
        return total(samples, name, status=status, view=view, method=method)

    # Six downloads through the API, one claim through the landing page.
    assert responses("200", "api-v1:download_share", "POST") == 6
    assert responses("303", "shares:landing", "POST") == 1


def test_metrics_are_not_found_without_the_token(site):
    assert scrape(f"{site.url}/metrics").status_code == 404
    assert scrape(f"{site.url}/metrics", Authorization="Bearer wrong").status_code == 404
    assert scrape(site.worker_metrics_url).status_code == 404
    assert scrape(site.worker_metrics_url, Authorization="Bearer wrong").status_code == 404
    assert scrape(f"{site.url}/metrics", **AUTH).status_code == 200


def test_promtool_finds_nothing_wrong_with_either_scrape(site):
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool is not installed (Debian: apt-get install prometheus)")
    for url in (f"{site.url}/metrics", site.worker_metrics_url):
        text = scrape(url, **AUTH).text
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
