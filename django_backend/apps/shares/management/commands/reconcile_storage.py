"""Heal storage and database in both directions.

Files in storage with no row, older than the grace period, are deleted (an upload whose row
never committed); rows whose file is missing are marked purged (never offered again); upload
spool files that a killed process left behind, older than the grace period, are deleted. The
same service the hourly Celery task runs; safe while the service runs.

`--spools-only` is the start-up step (scripts/entrypoint.sh): the spool files alone, without
listing storage or touching the database.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.shares.services import maintenance


class Command(BaseCommand):
    help = (
        "Delete orphan files in storage and stale upload spool files, and mark rows whose "
        "file is missing as purged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be done; change nothing."
        )
        parser.add_argument(
            "--grace",
            type=int,
            default=settings.RECONCILE_GRACE_SECONDS,
            help="Seconds a file without a row, or a spool file, is left alone "
            "(default %(default)s).",
        )
        parser.add_argument(
            "--spools-only",
            action="store_true",
            help="Only delete stale upload spool files (the start-up step).",
        )

    def handle(
        self, *args, dry_run: bool, grace: int, spools_only: bool, verbosity: int, **options
    ) -> None:
        prefix = "Would delete" if dry_run else "Deleted"
        if spools_only:
            spools = maintenance.spools_sweep(grace=grace, dry_run=dry_run)
            if verbosity >= 1:
                self.stdout.write(
                    f"{prefix} {spools.files} stale upload spool file(s) ({spools.bytes} bytes)."
                )
            return
        result = maintenance.storage_reconcile(grace=grace, dry_run=dry_run)
        marked = "would be marked" if dry_run else "marked"
        if verbosity >= 1:
            self.stdout.write(
                f"{prefix} {result.orphan_files} orphan file(s) ({result.orphan_bytes} bytes) "
                f"and {result.stale_spools} stale upload spool file(s) "
                f"({result.stale_spool_bytes} bytes); "
                f"{result.missing_files} share(s) with a missing file {marked} purged."
            )
