"""gunicorn's configuration file, which gunicorn reads from its working directory
(django_backend/) however the service is started: the Procfile (`make run`), the image's
CMD through scripts/entrypoint.sh, the tests' and the benchmark's harness.

It holds only the hooks of the Prometheus multiprocess mode (apps.common.metrics); how many
workers and threads, and where to listen, stay on each command line.
"""

import os

from apps.common.logging import redact_gunicorn_logs

# gunicorn's own lines quote the request line of a request it rejects, and the access log
# every path: the same token redaction as the app's log, from the master on.
redact_gunicorn_logs()


def on_starting(server: object) -> None:
    """In the master, before any worker: clear the metric files of the processes of a
    previous run (those of processes still running, such as a Celery worker started first on
    this host, are kept)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    # The settings resolve PROMETHEUS_MULTIPROC_DIR (from the environment or .env), make it
    # and export it, before anything imports prometheus_client: the workers, forked from
    # this process, count there.
    from django.conf import settings

    directory = settings.PROMETHEUS_MULTIPROC_DIR

    from apps.common.metrics import clear_dead_processes

    clear_dead_processes(directory)


def child_exit(server: object, worker: object) -> None:
    """In the master, when a worker has exited: what prometheus_client keeps for live
    processes only goes with it (its counters stay, so that totals never drop)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
