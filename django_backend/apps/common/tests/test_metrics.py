"""/metrics in process: who may read it, what a scrape is made of, the Celery counters and
the clearing of dead processes' files. The figures themselves, added up across gunicorn's
workers and a Celery worker, are tested through the real processes in
tests/test_metrics.py."""

import subprocess
from ipaddress import ip_network
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from celery import signals as celery_signals
from django.core.exceptions import ImproperlyConfigured
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from apps.common import metrics
from core import env

TOKEN = "a-scraper-token-of-some-length"

# A scrape reads the registered collectors, the shares' from the database.
pytestmark = pytest.mark.django_db


@pytest.fixture
def no_access(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_FROM = []
    return settings


def test_metrics_are_not_found_when_neither_token_nor_addresses_are_set(client, no_access):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_the_bearer_token_opens_metrics_and_nothing_else_does(client, no_access):
    no_access.METRICS_TOKEN = TOKEN

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 404
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert list(text_string_to_metric_families(response.content.decode()))


def test_allowed_addresses_are_checked_against_the_trusted_client_address(client, no_access):
    no_access.METRICS_ALLOW_FROM = [ip_network("10.1.0.0/16"), ip_network("::1")]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 404
    # Behind a proxy the address is the one its header names, not the proxy's own.
    no_access.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    behind_proxy = {"REMOTE_ADDR": "10.1.0.1"}
    assert client.get("/metrics", HTTP_X_REAL_IP="192.0.2.7", **behind_proxy).status_code == 404
    assert client.get("/metrics", HTTP_X_REAL_IP="10.1.9.9", **behind_proxy).status_code == 200
    assert client.get("/metrics", HTTP_X_REAL_IP="not an address").status_code == 404


def test_metrics_answer_only_get_and_head_to_an_allowed_scraper(client, no_access):
    no_access.METRICS_TOKEN = TOKEN
    auth = {"Authorization": f"Bearer {TOKEN}"}

    assert client.post("/metrics").status_code == 404
    assert client.post("/metrics", headers=auth).status_code == 405
    assert client.head("/metrics", headers=auth).status_code == 200


def test_a_bad_allow_list_stops_start_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("METRICS_ALLOW_FROM", "10.0.0.0/8, example.com")

    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOW_FROM"):
        env.networks("METRICS_ALLOW_FROM")


class Broken:
    def collect(self):
        raise ConnectionError("the database is down")


class Fixed:
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("test_fixed_value", "A value for the test.", value=42)


def test_a_failing_collector_costs_its_own_figures_only(monkeypatch):
    monkeypatch.setattr(metrics, "_collectors", {"broken": Broken(), "fixed": Fixed()})

    body, _ = metrics.exposition("")

    samples = [
        sample
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]
    assert Sample("test_fixed_value", {}, 42.0) in samples


def test_the_worker_scrape_leaves_the_collectors_out(monkeypatch):
    monkeypatch.setattr(metrics, "_collectors", {"fixed": Fixed()})

    assert b"test_fixed_value" in metrics.exposition("")[0]
    assert b"test_fixed_value" not in metrics.exposition("", with_collectors=False)[0]


def worker_request(**environ: str) -> tuple[str, bytes]:
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(
        metrics.worker_metrics_app(environ, lambda status, headers: statuses.append(status))
    )
    return statuses[0], body


def test_the_workers_exporter_applies_the_same_rule(no_access):
    no_access.METRICS_TOKEN = TOKEN

    assert worker_request(PATH_INFO="/metrics")[0] == "404 Not Found"
    status, body = worker_request(PATH_INFO="/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == "200 OK"
    assert b"# TYPE" in body
    no_access.METRICS_TOKEN = ""
    no_access.METRICS_ALLOW_FROM = [ip_network("127.0.0.0/8")]
    assert worker_request(PATH_INFO="/metrics", REMOTE_ADDR="127.0.0.1")[0] == "200 OK"
    assert worker_request(PATH_INFO="/metrics", REMOTE_ADDR="192.0.2.1")[0] == "404 Not Found"
    assert worker_request(PATH_INFO="/other", REMOTE_ADDR="127.0.0.1")[0] == "404 Not Found"


class FakeTask:
    name = "apps.tests.a_task"


def counted(outcome: str) -> float:
    return metrics.TASKS.labels(FakeTask.name, outcome)._value.get()


@pytest.mark.parametrize(
    ("signal", "outcome"),
    [
        (celery_signals.task_success, "succeeded"),
        (celery_signals.task_failure, "failed"),
        (celery_signals.task_retry, "retried"),
    ],
)
def test_celery_signals_count_each_task_by_outcome(signal, outcome):
    before = {name: counted(name) for name in metrics.TASK_OUTCOMES}

    signal.send(sender=FakeTask(), result=None, exception=None, request=None, reason="test")

    after = {name: counted(name) for name in metrics.TASK_OUTCOMES}
    assert after == {**before, outcome: before[outcome] + 1}


def test_clearing_keeps_the_files_of_running_processes_only(tmp_path: Path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    probe = subprocess.Popen(["true"])
    probe.wait()
    running = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (probe.pid, running.pid):
            for kind in ("counter", "histogram", "gauge_livesum"):
                MmapedDict(str(directory / f"{kind}_{pid}.db")).close()

        assert metrics.clear_dead_processes(directory) == 3
    finally:
        running.kill()
        running.wait()
    assert sorted(path.name for path in directory.iterdir()) == [
        f"counter_{running.pid}.db",
        f"gauge_livesum_{running.pid}.db",
        f"histogram_{running.pid}.db",
    ]
