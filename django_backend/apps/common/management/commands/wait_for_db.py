"""Wait until the database accepts connections, for a bounded time.

Containers start in any order and a database server takes a few seconds to accept
connections after its process starts: the entrypoint runs this before migrating, so that a
web or worker process does not crash on its first query. It polls
`connection.ensure_connection()` until it succeeds or `--timeout` seconds have passed, then
exits non-zero with a message naming the database's host (never its password).
"""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

POLL_INTERVAL = 1.0  # seconds between attempts; each PostgreSQL attempt is bounded by
# connect_timeout (2 s in settings), so a hanging server cannot stretch the deadline much.


def describe(connection: BaseDatabaseWrapper) -> str:
    """Where the database is, for messages: vendor, host, port and name; no credentials."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"SQLite database {settings_dict['NAME']}"
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or "default port"
    return f"{connection.display_name} database {settings_dict['NAME']!r} at {host}:{port}"


class Command(BaseCommand):
    help = "Wait until the database accepts connections; fail after --timeout seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            help="Seconds to keep trying before giving up (default %(default)s).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database alias to wait for (default %(default)r).",
        )

    def handle(self, *args, timeout: float, database: str, verbosity: int, **options) -> None:
        connection = connections[database]
        where = describe(connection)
        started = time.monotonic()
        deadline = started + timeout
        attempts = 0
        while True:
            attempts += 1
            try:
                connection.ensure_connection()
            except OperationalError as exc:
                last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                # A failed attempt can leave a half-open wrapper behind; start clean.
                connection.close()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandError(
                        f"The {where} did not accept connections within {timeout:g} s "
                        f"({attempts} attempt(s)); last error: {last_error}"
                    ) from None
                if verbosity >= 2 or (verbosity >= 1 and attempts == 1):
                    self.stderr.write(f"Waiting up to {timeout:g} s for the {where}: {last_error}")
                time.sleep(min(POLL_INTERVAL, remaining))
            else:
                break
        if verbosity >= 1:
            elapsed = time.monotonic() - started
            self.stdout.write(
                f"The {where} accepts connections (after {attempts} attempt(s), {elapsed:.1f} s)."
            )
