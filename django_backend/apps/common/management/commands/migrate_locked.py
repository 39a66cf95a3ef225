"""Apply migrations, one process at a time.

Every web replica's entrypoint migrates before it serves. When several start at once
(`docker compose up --scale web=3`, a rolling upgrade), plain `migrate` runs race on the same
database: each sees the same migration as unapplied, and all but the first fail half-way
(a table that already exists) or, worse, apply a data migration twice. This command is
`migrate`, with all of its options, run while holding a PostgreSQL session-level advisory
lock: the first process migrates, the others wait for the lock, then find nothing to apply.

On SQLite it just migrates: a SQLite database lives on one machine, and its write lock
already serializes the schema changes.

The lock belongs to the database session, so the connection must reach PostgreSQL itself,
not a pooler in transaction mode (PgBouncer's `pool_mode = transaction`), which would hand
the lock and the migration different server sessions.
"""

import time

from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from .wait_for_db import describe

# Arbitrary, but the same in every replica: the advisory lock's key (a signed 64-bit
# integer, per database). The bytes spell "ots_migr" in ASCII.
MIGRATION_LOCK_ID = 0x6F74735F6D696772
LOCK_POLL_INTERVAL = 0.5  # seconds


class Command(MigrateCommand):
    help = (
        "Apply migrations like `migrate` (same options), holding a PostgreSQL advisory lock "
        "so that replicas starting together migrate one at a time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--lock-timeout",
            type=float,
            default=600.0,
            help=(
                "Seconds to wait for another process's migration to finish before giving up "
                "(default %(default)s)."
            ),
        )

    def handle(self, *args, **options) -> None:
        lock_timeout = options.pop("lock_timeout")
        verbosity = options["verbosity"]
        connection = connections[options["database"]]
        where = describe(connection)
        if connection.vendor != "postgresql":
            super().handle(*args, **options)
            if verbosity >= 1:
                self.stdout.write(f"Migrated the {where} (no lock needed).")
            return

        waited = self._acquire(connection, timeout=lock_timeout, verbosity=verbosity)
        started = time.monotonic()
        try:
            super().handle(*args, **options)
        finally:
            self._release(connection)
        if verbosity >= 1:
            self.stdout.write(
                f"Migrated the {where} under advisory lock {MIGRATION_LOCK_ID} "
                f"(waited {waited:.1f} s for it, held it {time.monotonic() - started:.1f} s)."
            )

    def _acquire(self, connection: BaseDatabaseWrapper, *, timeout: float, verbosity: int) -> float:
        """Take the lock, polling, so that the wait is bounded; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        announced = False
        while True:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK_ID])
                (locked,) = cursor.fetchone()
            if locked:
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"Another process has held the migration lock ({MIGRATION_LOCK_ID}) on "
                    f"the {describe(connection)} for more than {timeout:g} s; giving up."
                )
            if verbosity >= 1 and not announced:
                announced = True
                self.stdout.write("Another process is migrating; waiting for it to finish.")
            time.sleep(LOCK_POLL_INTERVAL)

    def _release(self, connection: BaseDatabaseWrapper) -> None:
        # If the session that held the lock is gone (the connection dropped mid-migration),
        # PostgreSQL released the lock with it: nothing is left locked, and the error that
        # dropped it is the one worth reporting, so this never raises.
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID])
                (released,) = cursor.fetchone()
        except DatabaseError as exc:
            released = False
            self.stderr.write(f"Could not release the migration lock: {exc}")
        if not released:
            self.stderr.write("The migration lock was released with its database session.")
