"""Errors by mail, through a real gunicorn and a real SMTP server on loopback.

With DJANGO_ADMINS and EMAIL_URL set, a server error is mailed to the admins; a request for a
host name the site does not serve (every scanner on the internet sends them) gets its 400 and
one warning line in the log, and no mail.
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.env import loopback_server_env
from tests.support.processes import Process, Processes, answers, free_port, gunicorn

ADMIN = "ops@example.com"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Stored before the 250 reply: once the app's mail call returns, the message is here.
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


@dataclass
class Server:
    url: str
    process: Process
    inbox: Inbox


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, inbox: tuple[Inbox, int]) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("error-mail")
    handler, smtp_port = inbox
    port = free_port()
    env = loopback_server_env(
        root,
        # Never migrated: any page that reads a share fails on the server's side.
        DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}",
        MEDIA_ROOT=str(root / "media"),
        CELERY_BROKER_URL="memory://localhost/",
        DJANGO_ADMINS=ADMIN,
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
        SKIP_MIGRATIONS="1",
    )
    with Processes(root) as processes:
        command = gunicorn(port, workers=1, threads=2, options=["--no-control-socket"])
        process = processes.start("gunicorn", command, env=env)
        url = f"http://127.0.0.1:{port}"
        processes.wait_until("gunicorn to answer /health/", lambda: answers(f"{url}/health/"), 30)
        yield Server(url=url, process=process, inbox=handler)


def test_a_bogus_host_gets_400_and_a_warning_line_while_a_server_error_is_mailed(server):
    bogus = requests.get(f"{server.url}/", headers={"Host": "evil.example"}, timeout=10)
    assert bogus.status_code == 400
    # Mail is sent before the response: whatever the bogus request would mail is in the inbox.
    bogus_mail = list(server.inbox.subjects())

    token = secrets.token_urlsafe(16)
    broken = requests.get(f"{server.url}/s/{token}", timeout=10)

    # The database has no tables: a server error (500, or 503 where the app names it an
    # outage), which Django logs at ERROR and so mails, with the path in the subject.
    assert broken.status_code >= 500
    subjects = server.inbox.subjects()
    # The test can fail: the same server does mail the admins about a real error.
    assert [subject for subject in subjects if "/s/" in subject], subjects
    assert all(message["To"] == ADMIN for message in server.inbox.messages)
    assert bogus_mail == []
    assert not [subject for subject in subjects if "evil.example" in subject]
    lines = server.process.log_text().splitlines()
    disallowed = [i for i, line in enumerate(lines) if "logger=django.security.Disallowed" in line]
    assert len(disallowed) == 1, lines
    line, following = lines[disallowed[0]], lines[disallowed[0] + 1 :]
    assert "level=WARNING" in line and "evil.example" in line
    assert not following or not following[0].startswith("Traceback"), "one line, no traceback"
