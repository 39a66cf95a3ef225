"""Screenshots of the main pages for docs/screenshots/, refreshed by every run (CI too).

docs/screenshots/<page>-<width>-<scheme>.png: the upload, landing and manage pages, the
410 page of a downloaded link, My shares and an owner's page of one share, at a desktop width
(the viewport) and a phone width (the whole page), light and dark; the admin's share list at
the desktop width.
"""

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.browser import Server, share_link, upload_through_page
from tests.support.env import REPO_DIR

from .accounts import make_operator, sign_up

pytestmark = pytest.mark.e2e

SCREENSHOTS_DIR = REPO_DIR / "docs" / "screenshots"
VIEWPORTS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}
SCHEMES = ["light", "dark"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOGGED_IN_PAGES = {"mine", "owner", "admin"}


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", path
    return struct.unpack(">II", header[16:24])


def test_screenshots_of_the_main_pages(
    new_context: Callable[..., BrowserContext], server: Server, tmp_path: Path
) -> None:
    photos = tmp_path / "holiday-photos.zip"
    photos.write_bytes(os.urandom(2_500_000))
    # A sender with an account, so that My shares and the owner's page have something.
    sender = new_context().new_page()
    make_operator(server, sign_up(sender))
    manage_url = upload_through_page(sender, photos, max_downloads=3)
    link = share_link(sender)
    letter = tmp_path / "signed-letter.pdf"
    letter.write_bytes(os.urandom(40_000))
    upload_through_page(sender, letter)
    delivered_link = share_link(sender)
    [(delivered_id,)] = server.query("SELECT id FROM shares_share WHERE name = ?", (letter.name,))
    logged_in = sender.context.storage_state()
    # The recipient has had a look at one and downloaded the other: every manage screenshot
    # shows the same timeline, as they are all taken before the landing page's (each
    # opening is an event).
    recipient = new_context()
    recipient.new_page().goto(link)
    assert recipient.request.post(delivered_link).status == 200
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)

    pages = {
        "upload": "/",
        "manage": manage_url,
        "landing": link,
        "gone": delivered_link,
        "mine": "/account/shares/",
        "owner": f"/account/shares/{delivered_id}/",
        "admin": "/admin/shares/share/",
    }
    written = []
    for name, url in pages.items():
        for width, viewport in VIEWPORTS.items():
            phone = width < 800
            if name == "admin" and phone:
                continue  # operators work at a desk
            for scheme in SCHEMES:
                page = new_context(
                    viewport=viewport,
                    color_scheme=scheme,
                    device_scale_factor=1,
                    is_mobile=phone,
                    has_touch=phone,
                    locale="en-US",
                    timezone_id="UTC",
                    storage_state=logged_in if name in LOGGED_IN_PAGES else None,
                ).new_page()
                page.goto(url)
                if name == "manage":
                    expect(page.locator("#copy-share-link")).to_be_visible()
                    qr = page.locator("figure.qr-box svg.qr[viewBox]")
                    # No code to scan on the phone the page is already on.
                    if phone:
                        expect(qr).to_be_hidden()
                    else:
                        expect(qr).to_be_visible()
                path = SCREENSHOTS_DIR / f"{name}-{width}-{scheme}.png"
                path.unlink(missing_ok=True)
                page.screenshot(path=path, full_page=phone, animations="disabled")
                written.append(path)
                page.context.close()

    assert len(written) == 26
    for path in written:
        image_width, image_height = png_size(path)
        assert image_width == int(path.stem.split("-")[1]), path
        assert image_height >= 800, path
        assert 10_000 < path.stat().st_size < 1_000_000, (path, path.stat().st_size)
