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

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.support.browser import MAX_UPLOAD_SIZE, Server
from tests.support.env import REPO_DIR, loopback_server_env
from tests.support.processes import Processes, answers, free_port, gunicorn

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
    # As in production: through scripts/entrypoint.sh (migrate, collectstatic, gunicorn).
    command = gunicorn(port, options=["--graceful-timeout", "2", "--no-control-socket"])
    with Processes(root) as processes:
        server = Server(
            url=f"http://127.0.0.1:{port}",
            root=root,
            database=database,
            media_root=media_root,
            upload_tmp=upload_tmp,
            process=processes.start("server", command, env=env),
        )
        processes.wait_until(
            "the server to answer /health/",
            lambda: answers(f"{server.url}/health/"),
            SERVER_START_DEADLINE,
        )
        yield server


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
        # The pages follow the browser's language: English unless a test asks for another.
        options.setdefault("locale", "en-US")
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
