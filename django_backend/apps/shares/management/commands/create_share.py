"""Create a share from a local file and print its share link and manage link.

manage.py create_share report.pdf --max-downloads 2 --expires-in 3600
echo 's3cret' | manage.py create_share report.pdf --password-stdin
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from tqdm import tqdm

from apps.shares.clients import Actor
from apps.shares.exceptions import ShareError
from apps.shares.services import lifecycle
from apps.shares.tokens import share_token_for

PROGRESS_THRESHOLD = 8 * 1024 * 1024  # files smaller than this need no progress bar


class _ProgressFile(File):
    """A file whose reads advance a progress bar (hashing, then copying to storage)."""

    def __init__(self, file, bar: tqdm) -> None:
        super().__init__(file)
        self._bar = bar

    def read(self, *args, **kwargs) -> bytes:
        data = self.file.read(*args, **kwargs)
        self._bar.update(len(data))
        return data


class Command(BaseCommand):
    help = "Create a share from a local file; prints the share URL and the manage URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The file to share.")
        parser.add_argument("--expires-in", type=int, default=None, help="Lifetime in seconds.")
        parser.add_argument("--max-downloads", type=int, default=1, help="1 to 100 (default 1).")
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read a password from standard input."
        )
        parser.add_argument(
            "--base-url",
            default=settings.SITE_URL or "http://127.0.0.1:8000",
            help="Base of the printed links (default: SITE_URL, else http://127.0.0.1:8000).",
        )

    def handle(self, *args, path: Path, **options) -> None:
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file.")
        password = ""
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input was empty.")
        size = path.stat().st_size
        if not size:
            raise CommandError(f"{path} is empty (0 bytes): there is nothing to share.")
        show_progress = options["verbosity"] >= 1 and size >= PROGRESS_THRESHOLD
        with (
            path.open("rb") as handle,
            tqdm(
                total=size * 2,  # read once to hash, once to store
                unit="B",
                unit_scale=True,
                desc=path.name,
                disable=not show_progress,
                file=self.stderr._out,
            ) as bar,
        ):
            try:
                created = lifecycle.share_create(
                    file=_ProgressFile(handle, bar),
                    name=path.name,
                    expires_in=options["expires_in"],
                    max_downloads=options["max_downloads"],
                    password=password,
                    actor=Actor(agent="command line"),
                    via="command",
                )
            except ShareError as exc:
                raise CommandError(exc.message) from exc

        base = options["base_url"].rstrip("/")
        share_path = reverse("shares:landing", args=[share_token_for(created.manage_token)])
        manage_path = reverse("shares:manage", args=[created.manage_token])
        self.stdout.write(f"Share link:  {base}{share_path}")
        self.stdout.write(f"Manage link: {base}{manage_path}")
        if options["verbosity"] >= 1:
            share = created.share
            self.stderr.write(
                f"Shared {share.name} ({share.size} bytes, sha256 {share.sha256}): "
                f"{share.max_downloads} download(s), expires {share.expires_at:%Y-%m-%d %H:%M:%S}Z."
            )
