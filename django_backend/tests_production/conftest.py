"""The `production` marker, and the production topology the topology test runs against."""

import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from nginx_standalone import MAIN_TEMPLATE, nginx_binary

from tests.support.env import loopback_server_env
from tests.support.processes import (
    BACKGROUND_ENV,
    Processes,
    answers,
    celery_beat,
    celery_worker,
    free_port,
    gunicorn,
)
from tests.support.production import (
    MAX_UPLOAD_SIZE,
    REDIS_SERVER,
    STATIC_ROOT,
    VARIANTS,
    Topology,
    Variant,
    claim_redis_database,
    database_url,
    periodic_jobs_ran,
    postgres_admin,
    require,
    start_s3,
)

START_DEADLINE = 90.0  # seconds: two entrypoints migrating a fresh database, collectstatic
JOBS_DEADLINE = 30.0  # beat -> broker -> worker -> database, with PURGE_INTERVAL=2


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml; registering it here too keeps --strict-markers
    # satisfied when this folder runs on its own.
    config.addinivalue_line(
        "markers", "production: starts the production topology (nginx, gunicorn, Celery)"
    )


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.name)
def topology(request, tmp_path_factory) -> Iterator[Topology]:
    """What docker-compose.yml runs, minus the containers, on loopback (see test_topology.py).

    Every wait has a deadline; every process is stopped and the database dropped whatever
    happens.
    """
    variant: Variant = request.param
    require(nginx_binary() is not None, "nginx is not installed")
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
    processes = Processes(logs)
    topology = Topology(
        variant=variant,
        nginx_url=f"http://127.0.0.1:{nginx_port}",
        second_url=f"http://127.0.0.1:{port_b}",
        media_root=media_root,
        logs=logs,
        env=env,
        processes=processes,
    )
    print(f"\nproduction topology ({variant.name}) in {root}")

    started = time.monotonic()
    try:
        if variant.s3:
            env.update(start_s3(topology, run_id))
            topology.timings["moto answering"] = time.monotonic() - started
        with psycopg.connect(**admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        site = {
            "NGINX_LISTEN": f"127.0.0.1:{nginx_port}",
            "UPSTREAM": f"127.0.0.1:{port_a}",
            "STATIC_ROOT": str(STATIC_ROOT),
            "MEDIA_ROOT": str(media_root),
            "CLIENT_MAX_BODY_SIZE": str(MAX_UPLOAD_SIZE + 1024**2),
            "REAL_IP_FROM": "127.0.0.1",
        }
        processes.nginx(root / "nginx", [(MAIN_TEMPLATE, site)], env=env)
        # Both at the same instant, on one fresh database: their migrations race, and
        # migrate_locked must make them take turns.
        for name, port in (("gunicorn-a", port_a), ("gunicorn-b", port_b)):
            processes.start(name, gunicorn(port, options=["--graceful-timeout", "5"]), env=env)
        processes.wait_until(
            "readiness through nginx",
            lambda: answers(f"{topology.nginx_url}/health/ready/"),
            START_DEADLINE,
        )
        topology.timings["nginx and gunicorn A ready"] = time.monotonic() - started
        processes.wait_until(
            "gunicorn B", lambda: answers(f"{topology.second_url}/health/"), START_DEADLINE
        )
        topology.timings["both gunicorns ready"] = time.monotonic() - started

        # As in docker-compose.yml: worker and beat once web is healthy.
        background = {**env, **BACKGROUND_ENV}
        processes.start("celery-worker", celery_worker(), env=background)
        processes.start("celery-beat", celery_beat(root / "celerybeat-schedule"), env=background)
        processes.wait_until(
            "the periodic purge job (beat, broker, worker, database)",
            lambda: periodic_jobs_ran(f"{topology.nginx_url}/health/ready/"),
            JOBS_DEADLINE,
        )
        topology.timings["worker and beat running jobs"] = time.monotonic() - started

        yield topology
    finally:
        processes.stop()
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
