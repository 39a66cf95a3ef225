"""A download that breaks off resumes in Chromium's own download manager, with a range.

The recipient presses Download on the landing page; the claim sends the browser to its
download session (/d/<token>), whose answer is cut off midway by a proxy between Chromium
and the server; then the recipient presses Resume on chrome://downloads, in the same browser
context. Chromium asks the session for the rest (`Range` from what it kept, `If-Range` with
the ETag), the server answers 206, and the saved file is the uploaded one, byte for byte.

Why chrome://downloads: the DevTools protocol reports downloads (`Browser.downloadWillBegin`,
`Browser.downloadProgress`: an interrupted one is "canceled") and can cancel one, but has no
command to resume one. Resume lives in the download manager, whose page is what a user
presses; Playwright's `Download` only reports the failure. So the test sets the context's
download behaviour itself (a folder of its own, events on) and resumes on that page.

The proxy is a thread of this test on loopback. It reads from the server through a small
receive buffer, so the server can be ahead of the cut by its socket's send buffer at most
(net.ipv4.tcp_wmem's maximum): the file is made larger than the cut plus that, so at the
cut the server has not sent every byte and the session stays open for the resume.
"""

import contextlib
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import Server, create_share
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e

T = TypeVar("T")

CUT_AFTER = 2 * 1024**2  # bytes of the first answer from /d/ (headers included) let through
UPSTREAM_RECEIVE_BUFFER = 64 * 1024
PUMP_BUFFER = 64 * 1024


def send_buffer_ceiling() -> int:
    """The most a TCP socket's send buffer grows to here (net.ipv4.tcp_wmem's maximum)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    return 4 * 1024**2  # Linux's default


@dataclass
class SessionRequest:
    """A GET of /d/ as it passed through the proxy, and the status the server answered."""

    range: str | None
    if_range: str | None
    status: int | None = None


class CuttingProxy:
    """Relays every connection between the browser and the server, and resets (RST, as a
    dropped network does) the first answer to a GET of /d/ after `cut_after` bytes of it.
    Records each /d/ request with its Range and If-Range headers and the status answered.

    HTTP/1.1 without pipelining (as Chromium speaks it): an answer's bytes follow its
    request on the same connection, so the first bytes after a /d/ request are its status
    line.
    """

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cut = threading.Event()
        self.session_requests: list[SessionRequest] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.socket()
        # Set before connecting, so that the window the server sees is small from the start.
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RECEIVE_BUFFER)
        try:
            upstream.connect(self.target)
        except OSError:
            client.close()
            return
        # What the requests pump tells the answers pump: the /d/ request now answered, and
        # whether its answer is the one to cut.
        connection: dict[str, Any] = {"awaiting": None, "cut_here": False}
        threading.Thread(
            target=self._pump_requests, args=(client, upstream, connection), daemon=True
        ).start()
        self._pump_answers(upstream, client, connection)

    def _pump_requests(
        self, client: socket.socket, upstream: socket.socket, connection: dict[str, Any]
    ) -> None:
        pending = b""
        body_left = 0  # bytes of a request body still to pass before the next head
        try:
            while data := client.recv(PUMP_BUFFER):
                pending += data
                while pending:
                    if body_left:
                        passed = min(body_left, len(pending))
                        body_left -= passed
                        pending = pending[passed:]
                        continue
                    head, found, rest = pending.partition(b"\r\n\r\n")
                    if not found:
                        break
                    body_left = self._saw_request(head, connection)
                    pending = rest
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

    def _saw_request(self, head: bytes, connection: dict[str, Any]) -> int:
        """Note a request head; the length of the body that follows it."""
        request_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, path, _ = request_line.split(" ", 2)
        if method == "GET" and path.startswith("/d/"):
            request = SessionRequest(headers.get("range"), headers.get("if-range"))
            with self._lock:
                self.session_requests.append(request)
                first = len(self.session_requests) == 1
            connection["cut_here"] = first
            connection["awaiting"] = request
        return int(headers.get("content-length", "0") or 0)

    def _pump_answers(
        self, upstream: socket.socket, client: socket.socket, connection: dict[str, Any]
    ) -> None:
        sent = 0  # bytes of the answer to cut passed so far
        try:
            while data := upstream.recv(PUMP_BUFFER):
                request = connection["awaiting"]
                if request is not None and request.status is None and b"\r\n" in data:
                    request.status = int(data.split(b"\r\n", 1)[0].split()[1])
                    connection["awaiting"] = None
                if connection["cut_here"]:
                    if sent + len(data) >= self.cut_after:
                        client.sendall(data[: self.cut_after - sent])
                        self._reset(client, upstream)
                        self.cut.set()
                        return
                    sent += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    @staticmethod
    def _reset(*sockets: socket.socket) -> None:
        for sock in sockets:
            # Linger 0: close() sends RST. SHUT_RD first wakes the other pump's recv(),
            # which would otherwise keep the socket open past close().
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
            sock.close()


@pytest.fixture
def proxy(server: Server):
    proxy = CuttingProxy(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), CUT_AFTER)
    yield proxy
    proxy.close()


def poll(page: Page, what: str, check: Callable[[], T], timeout: float = 20.0) -> T:
    """wait_until for conditions that Playwright's events decide: its sync API delivers
    them (the DevTools protocol's among them) only while one of its calls runs."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        page.wait_for_timeout(100)
    return result


def save_downloads_to(browser: Browser, context: BrowserContext, page: Page, folder: Path):
    """Chromium saves the context's downloads in `folder`, each named by its guid, and
    reports them on the returned session's events."""
    folder.mkdir()
    target = context.new_cdp_session(page).send("Target.getTargetInfo")["targetInfo"]
    devtools = browser.new_browser_cdp_session()
    devtools.send(
        "Browser.setDownloadBehavior",
        {
            "behavior": "allowAndName",
            "downloadPath": str(folder),
            "eventsEnabled": True,
            "browserContextId": target["browserContextId"],
        },
    )
    return devtools


def press_resume(downloads: Page) -> None:
    """The Resume of the one download on chrome://downloads: a button of its own in some
    versions of Chromium, an entry of its "More actions" menu in others."""
    resume = downloads.get_by_role("button", name="Resume", exact=True)
    if resume.count():
        resume.click()
        return
    downloads.get_by_role("button", name="More actions").click()
    downloads.get_by_role("menuitem", name="Resume").click()


def test_a_download_cut_off_midway_resumes_in_chromium_with_a_range(
    browser: Browser,
    new_context: Callable[..., BrowserContext],
    server: Server,
    proxy: CuttingProxy,
    tmp_path: Path,
) -> None:
    name = f"resumed-{os.urandom(4).hex()}.bin"
    content = os.urandom(CUT_AFTER + send_buffer_ceiling() + 4 * 1024**2)
    digest = hashlib.sha256(content).hexdigest()
    share = create_share(server, content, name)
    [(share_id, storage_name)] = server.query(
        "SELECT id, storage_name FROM shares_share WHERE name = ?", (name,)
    )
    context = new_context(base_url=proxy.url)
    page = context.new_page()
    devtools = save_downloads_to(browser, context, page, tmp_path / "downloads")
    begun: list[dict] = []
    interrupted: list[dict] = []

    def on_progress(event: dict) -> None:
        if event["state"] == "canceled":
            interrupted.append(event)

    devtools.on("Browser.downloadWillBegin", lambda event: begun.append(event))
    devtools.on("Browser.downloadProgress", on_progress)

    page.goto(share.url.replace(server.url, proxy.url))
    page.locator("#download-button").click()

    [download] = poll(page, "the download to begin", lambda: begun)
    assert download["suggestedFilename"] == name
    assert download["url"].startswith(f"{proxy.url}/d/")
    wait_until("the proxy to cut the first answer", proxy.cut.is_set)
    # Chromium reports an interrupted download as "canceled"; it keeps the bytes it has.
    [failure] = poll(page, "Chromium to see the download break off", lambda: interrupted)
    assert 0 < failure["receivedBytes"] < len(content)

    downloads = context.new_page()
    downloads.goto("chrome://downloads")
    press_resume(downloads)

    saved = tmp_path / "downloads" / download["guid"]
    wait_until("Chromium to finish the resumed download", saved.exists, 30)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    # The resume asked for the rest, of this very file, and got a part, not the whole again.
    first, resumed = proxy.session_requests
    assert (first.range, first.status) == (None, 200)
    assert resumed.status == 206
    assert resumed.if_range == f'"{digest}"'
    assert resumed.range is not None
    offset = int(resumed.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset < len(content)

    # The server saw a download break off, then the rest of it; the file is now gone (the
    # bytes first, then the timeline's "purged").
    def timeline() -> list[str]:
        rows = server.query(
            "SELECT kind FROM shares_shareevent WHERE share_id = ? ORDER BY at, id", (share_id,)
        )
        return [kind for (kind,) in rows]

    wait_until("the timeline to say the bytes were deleted", lambda: "purged" in timeline())
    assert timeline()[-4:] == [
        "download_started",
        "download_broken_off",
        "download_completed",
        "purged",
    ]
    assert not (server.media_root / storage_name).exists()
    assert server.query("SELECT downloads FROM shares_share WHERE id = ?", (share_id,)) == [(1,)]
