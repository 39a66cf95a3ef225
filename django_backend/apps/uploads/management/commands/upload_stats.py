"""Counts of resumable uploads by state, bytes staged, and the oldest unfinished upload.

Beside share_stats (apps.shares), which knows nothing of uploads: the shares app sits below
this one and must not import it.
"""

import json

from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from apps.uploads import maintenance


class Command(BaseCommand):
    help = "Show counts of resumable uploads by state, bytes staged and the oldest one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args, as_json: bool, verbosity: int, **options) -> None:
        stats = maintenance.uploads_stats()
        oldest = stats["oldest_uploading_created_at"]
        if as_json:
            stats["oldest_uploading_created_at"] = (
                oldest.isoformat().replace("+00:00", "Z") if oldest else None
            )
            self.stdout.write(json.dumps(stats, sort_keys=True))
            return
        for state in ("uploading", "complete", "expired", "ended"):
            self.stdout.write(f"{state:>12}: {stats[state]}")
        staged = stats["bytes_staged"]
        self.stdout.write(f"{'staged':>12}: {staged} bytes ({filesizeformat(staged)})")
        self.stdout.write(
            f"{'oldest':>12}: {oldest:%Y-%m-%d %H:%M:%S}Z" if oldest else f"{'oldest':>12}: -"
        )
        if verbosity >= 1:
            self.stdout.write(f"{stats['total']} upload(s) in all.")
