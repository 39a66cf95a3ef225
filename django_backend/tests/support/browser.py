"""Helpers of the browser tests (tests_e2e): the server they drive, seen from outside, and the
steps on its pages that several tests take."""

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Page

from .processes import Process

MAX_UPLOAD_SIZE = 10 * 1024**3  # the documented default, stated so the pages under test know it


@dataclass
class Server:
    """The gunicorn the browser talks to: its URL, its SQLite database and its folders."""

    url: str
    root: Path
    database: Path
    media_root: Path
    upload_tmp: Path
    process: Process

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
        return self.process.tail(lines)


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
