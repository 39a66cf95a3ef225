"""Heal storage and database in both directions.

Files in storage with no row, older than the grace period, are deleted (an upload whose row
never committed); rows whose file is missing are marked purged (never offered again). The
same service the hourly Celery task runs; safe while the service runs.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.shares.services import maintenance


class Command(BaseCommand):
    help = "Delete orphan files in storage and mark rows whose file is missing as purged."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be done; change nothing."
        )
        parser.add_argument(
            "--grace",
            type=int,
            default=settings.RECONCILE_GRACE_SECONDS,
            help="Seconds a file without a row is left alone (default %(default)s).",
        )

    def handle(self, *args, dry_run: bool, grace: int, verbosity: int, **options) -> None:
        result = maintenance.storage_reconcile(grace=grace, dry_run=dry_run)
        prefix = "Would delete" if dry_run else "Deleted"
        marked = "would be marked" if dry_run else "marked"
        if verbosity >= 1:
            self.stdout.write(
                f"{prefix} {result.orphan_files} orphan file(s) ({result.orphan_bytes} bytes); "
                f"{result.missing_files} share(s) with a missing file {marked} purged."
            )
