"""Prometheus metrics: the /metrics view, who may read it, and how the figures of every
process of the service are added up.

Multiprocess mode. gunicorn runs several worker processes, and the Celery worker, the
management commands and the purge job count in processes of their own. Each process writes
its counters to files of its own in PROMETHEUS_MULTIPROC_DIR (core/settings.py puts the
directory in the environment before prometheus_client is imported, which is when the
client decides); a scrape, answered by any one worker, adds up every file there
(MultiProcessCollector). Files of processes that are gone stay: a counter must not drop
when a worker is recycled. They are cleared when the service starts (`clear_dead_processes`,
called by gunicorn.conf.py and when a Celery worker is ready), sparing processes still
running, so that a worker started before the web server keeps its counts.

Figures read from the database at scrape time (active shares, stored bytes) come from
collectors that feature apps register here (`register_collector`, from their
AppConfig.ready()), as they register readiness checks: this ground floor knows no feature.
They are added to the web server's scrape only: every process would report the same rows.

Celery: every task that succeeds, fails or is retried is counted by name through Celery's
signals (`connect_task_signals`, from CommonConfig.ready()), in the worker's processes.
When the worker shares the directory with the web server (one host: `make run`) the web
server's /metrics includes them; a worker with a directory of its own (its own container)
serves them itself at WORKER_METRICS_BIND (`serve_worker_metrics`).

Access: /metrics answers 404, like any unknown path, unless the scraper sends the bearer
token METRICS_TOKEN or comes from an address in METRICS_ALLOW_FROM.
"""

import contextlib
import hmac
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server

from celery import signals as celery_signals
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import CollectorRegistry, Counter, values
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .clients import client_ip

logger = logging.getLogger(__name__)

if not getattr(values.ValueClass, "_multiprocess", False):
    # prometheus_client chose in-process values when it was first imported: something
    # imported it before the settings exported PROMETHEUS_MULTIPROC_DIR. Each gunicorn
    # worker would then count alone and a scrape would show one worker's share.
    raise RuntimeError(
        "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: load the "
        "Django settings first."
    )

TASK_OUTCOMES = ("succeeded", "failed", "retried")

TASKS = Counter(
    "onetimeshare_tasks",
    "Celery tasks run by the worker, by task name and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


_collectors: dict[str, Collector] = {}


def register_collector(name: str, collector: Collector) -> None:
    """Add a collector read at each scrape of the web server (from an AppConfig.ready())."""
    _collectors[name] = collector


class _Guarded:
    """A registered collector whose failure (the database is down) costs the scrape its
    figures, not the whole answer: the counters are what an outage is diagnosed with."""

    def __init__(self, name: str, collector: Collector) -> None:
        self.name = name
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = list(self.collector.collect())
        except Exception:
            logger.warning("Metrics collector %s failed; its figures are left out.", self.name)
            return iter(())
        return iter(metrics)


def scrape_registry(*, with_collectors: bool = True) -> CollectorRegistry:
    """A registry for one scrape: every process's counters from PROMETHEUS_MULTIPROC_DIR,
    and with `with_collectors` the registered collectors."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if with_collectors:
        for name, collector in _collectors.items():
            registry.register(_Guarded(name, collector))
    return registry


def exposition(accept: str, *, with_collectors: bool = True) -> tuple[bytes, str]:
    """The scrape's body and content type, in the format the scraper asked for (the
    Prometheus text format, or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(scrape_registry(with_collectors=with_collectors)), content_type


def scraper_allowed(*, authorization: str, address: str) -> bool:
    """Whether a scraper may read the metrics: it sends `Authorization: Bearer
    METRICS_TOKEN`, or its address is in METRICS_ALLOW_FROM. Neither set: nobody."""
    token = settings.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return True
    if settings.METRICS_ALLOW_FROM and address:
        try:
            client = ip_address(address.strip())
        except ValueError:
            return False
        # An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        client = getattr(client, "ipv4_mapped", None) or client
        return any(client in network for network in settings.METRICS_ALLOW_FROM)
    return False


def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the service's figures for Prometheus, for allowed scrapers only.

    Anyone else gets the site's 404 page: the endpoint does not exist for them."""
    allowed = scraper_allowed(
        authorization=request.headers.get("Authorization", ""), address=client_ip(request)
    )
    if not allowed:
        raise Http404()
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    body, content_type = exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def clear_dead_processes(directory: Path | None = None) -> int:
    """Delete the files of processes no longer running from PROMETHEUS_MULTIPROC_DIR (or
    `directory`); returns how many. Run when the service starts: the counts of its last
    run are gone with it, those of a process of this run already counting are kept."""
    directory = Path(directory or os.environ["PROMETHEUS_MULTIPROC_DIR"])
    removed = 0
    for path in directory.glob("*.db"):
        # counter_1234.db, histogram_1234.db, gauge_livesum_1234.db
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and _running(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


# --- Celery ------------------------------------------------------------------------------


def _task_name(sender: Any) -> str:
    return getattr(sender, "name", None) or "unknown"


def _on_task_success(sender: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender), "succeeded").inc()


def _on_task_failure(sender: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender), "failed").inc()


def _on_task_retry(sender: Any = None, **_: Any) -> None:
    TASKS.labels(_task_name(sender), "retried").inc()


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # Every outcome of every task exists from the start, at 0, so that rate() and alerts
    # see a first failure as an increase rather than as a new series.
    for name in sender.app.tasks if sender is not None else ():
        if not name.startswith("celery."):
            for outcome in TASK_OUTCOMES:
                TASKS.labels(name, outcome)
    clear_dead_processes()
    if settings.WORKER_METRICS_BIND:
        serve_worker_metrics(settings.WORKER_METRICS_BIND)


def connect_task_signals() -> None:
    """Count the Celery tasks (in whichever process runs them), and when a worker is
    ready, clear the files of dead processes and serve WORKER_METRICS_BIND if set."""
    celery_signals.task_success.connect(_on_task_success, weak=False)
    celery_signals.task_failure.connect(_on_task_failure, weak=False)
    celery_signals.task_retry.connect(_on_task_retry, weak=False)
    celery_signals.worker_ready.connect(_on_worker_ready, weak=False)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a scrape every few seconds says nothing."""


class _IPv6Server(ThreadingWSGIServer):
    address_family = socket.AF_INET6


def worker_metrics_app(environ: dict, start_response: Callable) -> list[bytes]:
    """The worker's /metrics as a WSGI app: the same access rule as the web server's (the
    scraper's own address, there being no proxy), its counters without the collectors."""
    allowed = scraper_allowed(
        authorization=environ.get("HTTP_AUTHORIZATION", ""),
        address=environ.get("REMOTE_ADDR", ""),
    )
    if not allowed or environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]
    body, content_type = exposition(environ.get("HTTP_ACCEPT", ""), with_collectors=False)
    start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
    return [body]


def serve_worker_metrics(bind: str) -> ThreadingWSGIServer:
    """Serve worker_metrics_app at `bind` (host:port; [::]:port for IPv6) from a daemon
    thread of this process."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - a container's port, access-checked
    server_class = _IPv6Server if ":" in host else ThreadingWSGIServer
    server = make_server(host, int(port), worker_metrics_app, server_class, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("Serving the worker's metrics at %s.", bind)
    return server
