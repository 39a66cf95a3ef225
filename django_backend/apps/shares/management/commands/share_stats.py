"""Counts of shares by status, bytes stored, and the oldest active share."""

import json

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from apps.shares import selectors


class Command(BaseCommand):
    help = "Show counts by status, bytes stored and the oldest active share."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args, as_json: bool, verbosity: int, **options) -> None:
        stats = selectors.shares_stats()
        oldest = stats["oldest_active_created_at"]
        if as_json:
            stats["oldest_active_created_at"] = (
                oldest.isoformat().replace("+00:00", "Z") if oldest else None
            )
            self.stdout.write(json.dumps(stats, sort_keys=True))
            return
        for status in ("active", "consumed", "expired", "revoked", "quarantined", "purged"):
            self.stdout.write(f"{status:>12}: {stats[status]}")
        stored = stats["bytes_stored"]
        self.stdout.write(f"{'stored':>12}: {stored} bytes ({filesizeformat(stored)})")
        self.stdout.write(
            f"{'oldest':>12}: {oldest:%Y-%m-%d %H:%M:%S}Z" if oldest else f"{'oldest':>12}: -"
        )
        if verbosity >= 1:
            self.stdout.write(f"{stats['total']} share(s) in all.")
