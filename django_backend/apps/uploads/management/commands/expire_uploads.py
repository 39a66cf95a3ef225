"""Remove the staged bytes of resumable uploads left alone for UPLOAD_SESSION_TTL.

The same service as the periodic Celery task; safe to run while the service runs.
"""

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from apps.uploads import maintenance


class Command(BaseCommand):
    help = "Remove the staged bytes of abandoned resumable uploads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; change nothing."
        )

    def handle(self, *args, dry_run: bool, verbosity: int, **options) -> None:
        result = maintenance.uploads_expire(dry_run=dry_run)
        if verbosity >= 1:
            verb = "Would remove" if dry_run else "Removed"
            self.stdout.write(
                f"{verb} {result.uploads} expired upload(s), {result.bytes} bytes "
                f"({filesizeformat(result.bytes)}) staged; {result.rows_deleted} old row(s) "
                f"deleted, {result.orphans} orphan(s) removed."
            )
