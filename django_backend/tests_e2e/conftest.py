"""End-to-end tests: a real browser (Chromium, driven by Playwright) against the real server.

The server is gunicorn (gthread), started once per session through scripts/entrypoint.sh as
in production (migrate, collectstatic, then gunicorn) with DJANGO_DEBUG=0, on a free port,
with its own SQLite database, MEDIA_ROOT and upload spool directory in a temporary folder.
So the browser sees the real headers (the strict CSP, `Referrer-Policy: no-referrer` on the
share pages, which makes it send `Origin: null` with their forms), WhiteNoise's static
files and a real streaming upload. The tests read the server's state from its database file
and its folders, never through Django in this process.

Each test gets fresh browser contexts (no shared cookies or storage). Chromium is Debian's
(/usr/bin/chromium, or CHROMIUM_PATH); axe-core comes from `npm ci --prefix e2e`. Missing
either is a failure with a message saying what to install, never a skip.
"""

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import loopback_server_env
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

REPO_DIR = Path(__file__).resolve().parents[2]
DJANGO_DIR = REPO_DIR / "django_backend"
ENTRYPOINT = REPO_DIR / "scripts" / "entrypoint.sh"
AXE_SCRIPT = REPO_DIR / "e2e" / "node_modules" / "axe-core" / "axe.min.js"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SERVER_START_DEADLINE = 60.0  # seconds: migrate a fresh database, collectstatic, boot
MAX_UPLOAD_SIZE = 1024**3  # the documented default, stated so the pages under test know it
ACTION_TIMEOUT_MS = 15_000
# Playwright's default of 5 s for expect() is short for a loaded CI machine.
expect.set_options(timeout=10_000)


def pytest_configure(config: pytest.Config) -> None:
    # Also to be registered in pyproject.toml; registering it here too keeps
    # --strict-markers satisfied when this folder runs on its own.
    config.addinivalue_line("markers", "e2e: drives a real browser against a real server")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> pytest.TestReport:
    """A failed test's report ends with the server's last log lines (warnings and errors:
    a CSRF rejection, a traceback)."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(server, Server):
        report.sections.append(("server log, last lines", server.log_tail()))
    return report


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(what: str, check: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline.

    For state the browser cannot see (the server's files and rows): a condition polled
    against a deadline, never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Server:
    url: str
    root: Path
    database: Path
    media_root: Path
    upload_tmp: Path
    log: Path
    process: subprocess.Popen

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows from the server's SQLite database, read-only."""
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def shares_named(self, name: str) -> list[tuple]:
        return self.query(
            "SELECT id, downloads, revoked_at FROM shares_share WHERE name = ?", (name,)
        )

    def stored_files(self) -> set[Path]:
        return {path for path in self.media_root.rglob("*") if path.is_file()}

    def spooled_files(self) -> set[Path]:
        return {path for path in self.upload_tmp.rglob("*") if path.is_file()}

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM to the server's process group (gunicorn and its workers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e-server")
    media_root, upload_tmp = root / "media", root / "upload-tmp"
    upload_tmp.mkdir()
    database = root / "db.sqlite3"
    port = free_port()
    env = loopback_server_env(
        root,
        DATABASE_URL=f"sqlite:///{database}",
        MEDIA_ROOT=str(media_root),
        FILE_UPLOAD_TEMP_DIR=str(upload_tmp),
        MAX_UPLOAD_SIZE=str(MAX_UPLOAD_SIZE),
        # No worker runs here: tasks go to an in-process broker, never to the filesystem
        # queue under var/, where a developer's `make run` worker would pick them up and
        # act on share ids of another database.
        CELERY_BROKER_URL="memory://localhost/",
        # Every request of the suite comes from 127.0.0.1; the limits have tests of their own.
        RATE_LIMIT_UPLOADS="1000/h",
        RATE_LIMIT_DOWNLOADS="1000/h",
        RATE_LIMIT_LOGINS="1000/10m",
        LOG_LEVEL="WARNING",
    )
    command = [
        str(ENTRYPOINT),
        *("gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{port}"),
        *("--worker-class", "gthread", "--workers", "2", "--threads", "8"),
        *("--graceful-timeout", "2", "--no-control-socket"),
    ]
    log = root / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own entrypoint, fixed arguments
            command,
            cwd=DJANGO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(
        url=f"http://127.0.0.1:{port}",
        root=root,
        database=database,
        media_root=media_root,
        upload_tmp=upload_tmp,
        log=log,
        process=process,
    )
    try:
        deadline = time.monotonic() + SERVER_START_DEADLINE
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{server.url}/health/", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer /health/ within {SERVER_START_DEADLINE} s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.2)
        yield server
    finally:
        stop_process(process)


# --- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is needed at {CHROMIUM} (set CHROMIUM_PATH to use another): "
            "apt-get install chromium. Playwright's own browser download is not used."
        )
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(browser: Browser, server: Server) -> Iterator[Callable[..., BrowserContext]]:
    """Make fresh browser contexts (own cookies and storage), all closed after the test."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("base_url", server.url)
        options.setdefault("accept_downloads", True)
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def axe_script() -> Path:
    if not AXE_SCRIPT.is_file():
        pytest.fail(f"axe-core is missing at {AXE_SCRIPT}: run `npm ci --prefix e2e`.")
    return AXE_SCRIPT


# --- helpers ------------------------------------------------------------------------------


@dataclass
class CreatedShare:
    url: str
    manage_url: str
    name: str
    content: bytes


def create_share(server: Server, content: bytes, name: str, **fields: Any) -> CreatedShare:
    """A share made through the JSON API, for tests whose subject is what comes after."""
    response = requests.post(
        f"{server.url}/api/v1/shares",
        files={"file": (name, content, "application/octet-stream")},
        data={key: str(value) for key, value in fields.items()},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return CreatedShare(created["url"], created["manage_url"], name, content)


def upload_through_page(
    page: Page, path: Path, *, password: str = "", max_downloads: int = 1
) -> str:
    """Choose `path` on the upload page, send it (by the page's script), return the manage
    page's URL once the browser is there."""
    page.goto("/")
    page.locator("#id_file").set_input_files(path)
    page.locator("#id_max_downloads").fill(str(max_downloads))
    if password:
        page.locator("#id_password").fill(password)
    page.locator("#upload-submit").click()
    page.wait_for_url(re.compile(r"/m/[\w-]+$"))
    return page.url


def share_link(page: Page) -> str:
    """The share link shown on the manage page."""
    link = page.locator("#share-link").input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/s/[\w-]+", link), link
    return link
