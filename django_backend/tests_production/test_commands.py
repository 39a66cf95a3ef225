"""wait_for_db and migrate_locked, the two commands the entrypoint runs before a server.

That two replicas starting together on a fresh database migrate one after the other is
shown end to end by test_topology.py, whose two gunicorns start at the same instant.
"""

import os
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.common.management.commands.migrate_locked import MIGRATION_LOCK_ID

DJANGO_DIR = Path(__file__).resolve().parents[1]

# Advisory locks are PostgreSQL's: these run in the PostgreSQL pass of `make test` only.
on_postgresql = pytest.mark.postgresql


def other_session() -> psycopg.Connection:
    """A second PostgreSQL session on the test database, as another replica would have."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@pytest.mark.django_db
def test_wait_for_db_returns_as_soon_as_the_database_answers():
    out = StringIO()
    started = time.monotonic()

    call_command("wait_for_db", timeout=5, stdout=out)

    assert time.monotonic() - started < 5
    assert "accepts connections (after 1 attempt(s)" in out.getvalue()


def test_wait_for_db_gives_up_after_its_timeout_naming_the_host_but_not_the_password():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        # Nothing listens on port 1: every attempt is refused at once.
        "DATABASE_URL": "postgres://ots:not-to-be-printed@127.0.0.1:1/ots_nowhere",
    }
    started = time.monotonic()

    result = subprocess.run(
        [sys.executable, "manage.py", "wait_for_db", "--timeout", "1.5"],
        cwd=DJANGO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert time.monotonic() - started < 30
    assert "'ots_nowhere' at 127.0.0.1:1 did not accept connections within 1.5 s" in result.stderr
    assert "not-to-be-printed" not in result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
def test_migrate_locked_migrates_prints_a_summary_and_releases_the_lock():
    out = StringIO()

    call_command("migrate_locked", interactive=False, stdout=out)

    assert "No migrations to apply." in out.getvalue()
    summary = out.getvalue().strip().splitlines()[-1]
    assert summary.startswith("Migrated the ")
    if connection.vendor == "postgresql":
        assert f"under advisory lock {MIGRATION_LOCK_ID}" in summary
        with other_session() as session:
            # Released: another session can take it at once.
            locked = session.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_ID])
            assert locked.fetchone() == (True,)


@pytest.mark.django_db(transaction=True)
def test_migrate_locked_is_quiet_at_verbosity_zero():
    out = StringIO()

    call_command("migrate_locked", interactive=False, verbosity=0, stdout=out)

    assert out.getvalue() == ""


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_migrate_locked_waits_while_another_process_holds_the_lock_then_gives_up():
    out = StringIO()
    with other_session() as session:
        session.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        started = time.monotonic()

        with pytest.raises(CommandError, match="held the migration lock"):
            call_command("migrate_locked", interactive=False, lock_timeout=1, stdout=out)

        assert time.monotonic() - started >= 1
    assert "Another process is migrating; waiting" in out.getvalue()
    assert "Operations to perform" not in out.getvalue(), "it migrated without the lock"


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_migrate_locked_proceeds_as_soon_as_the_other_process_lets_go():
    out = StringIO()
    with other_session() as session:
        session.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        # The other "replica" finishes its migration a second from now.
        release = threading.Timer(
            1.0, session.execute, ["SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID]]
        )
        release.start()
        started = time.monotonic()
        try:
            call_command("migrate_locked", interactive=False, lock_timeout=30, stdout=out)
        finally:
            release.cancel()
            release.join(timeout=10)
        waited = time.monotonic() - started

    assert 0.9 <= waited < 10
    assert "Another process is migrating; waiting" in out.getvalue()
    assert "No migrations to apply." in out.getvalue()
