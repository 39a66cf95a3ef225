"""Delete the bytes of every consumed, expired or revoked share still in storage.

The same service the periodic Celery task runs every minute; safe while the service runs.
"""

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from apps.shares.services import maintenance


class Command(BaseCommand):
    help = "Delete the bytes of every consumed, expired or revoked share still in storage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be purged; change nothing."
        )

    def handle(self, *args, dry_run: bool, verbosity: int, **options) -> None:
        result = maintenance.shares_purge(dry_run=dry_run)
        verb = "Would purge" if dry_run else "Purged"
        if verbosity >= 1:
            self.stdout.write(
                f"{verb} {result.shares} share(s), {result.bytes} bytes "
                f"({filesizeformat(result.bytes)}); "
                f"{result.rows_deleted} row(s) past retention "
                f"{'would be ' if dry_run else ''}deleted."
            )
