"""Screenshots of the main pages for docs/screenshots/, refreshed by every run (CI too).

docs/screenshots/<page>-<width>-<scheme>.png: the upload, landing and manage pages, at a
desktop width (the viewport) and a phone width (the whole page), light and dark.
"""

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.browser import share_link, upload_through_page
from tests.support.env import REPO_DIR

pytestmark = pytest.mark.e2e

SCREENSHOTS_DIR = REPO_DIR / "docs" / "screenshots"
VIEWPORTS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}
SCHEMES = ["light", "dark"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", path
    return struct.unpack(">II", header[16:24])


def test_screenshots_of_the_main_pages(
    new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    photos = tmp_path / "holiday-photos.zip"
    photos.write_bytes(os.urandom(2_500_000))
    sender = new_context().new_page()
    manage_url = upload_through_page(sender, photos, max_downloads=3)
    link = share_link(sender)
    # The recipient has had a look: every manage screenshot shows the same timeline, as
    # they are all taken before the landing page's (each opening is an event).
    new_context().new_page().goto(link)
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)

    written = []
    for name, url in {"upload": "/", "manage": manage_url, "landing": link}.items():
        for width, viewport in VIEWPORTS.items():
            phone = width < 800
            for scheme in SCHEMES:
                page = new_context(
                    viewport=viewport,
                    color_scheme=scheme,
                    device_scale_factor=1,
                    is_mobile=phone,
                    has_touch=phone,
                    locale="en-US",
                    timezone_id="UTC",
                ).new_page()
                page.goto(url)
                if name == "manage":
                    expect(page.locator("figure.qr-box svg.qr[viewBox]")).to_be_visible()
                    expect(page.locator("#copy-share-link")).to_be_visible()
                path = SCREENSHOTS_DIR / f"{name}-{width}-{scheme}.png"
                path.unlink(missing_ok=True)
                page.screenshot(path=path, full_page=phone, animations="disabled")
                written.append(path)
                page.context.close()

    assert len(written) == 12
    for path in written:
        image_width, image_height = png_size(path)
        assert image_width == int(path.stem.split("-")[1]), path
        assert image_height >= 800, path
        assert 10_000 < path.stat().st_size < 1_000_000, (path, path.stat().st_size)
