"""The recipient's side in a browser: the landing page, the Download form (a POST from a
no-referrer page, so with `Origin: null`), the password, and the sender's page watching."""

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Request, expect

from tests.support.browser import Server, create_share, share_link, upload_through_page
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e

SHARE_PHRASE = "open sesame"  # the password of the protected share


def css_colour(element: Locator, property_name: str) -> str:
    """A computed colour (or custom property) of `element`, as the browser resolves it."""
    return element.evaluate(
        """(element, name) => {
            const probe = document.createElement("span");
            probe.style.color = name.startsWith("--")
                ? getComputedStyle(element).getPropertyValue(name).trim()
                : getComputedStyle(element)[name];
            document.body.append(probe);
            const colour = getComputedStyle(probe).color;
            probe.remove();
            return colour;
        }""",
        property_name,
    )


def storage_path(server: Server, name: str) -> Path:
    [(storage_name,)] = server.query(
        "SELECT storage_name FROM shares_share WHERE name = ?", (name,)
    )
    return server.media_root / storage_name


def test_recipient_downloads_once_then_the_link_is_gone(
    context: BrowserContext, page: Page, server: Server
) -> None:
    share = create_share(server, os.urandom(300 * 1024), "annual-report-2026.pdf")
    sha256 = hashlib.sha256(share.content).hexdigest()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    response = page.goto(share.url)
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    expect(page.locator("#file-title")).to_have_text(share.name)
    expect(page.locator(".facts")).to_contain_text("300.0 KB (307200 bytes)")
    expect(page.locator("#sha256")).to_have_text(sha256)
    expect(page.locator("#downloads-left")).to_have_text("1")
    # The default expiry is a day; the countdown runs in the page.
    expect(page.locator("time#expires-in[data-countdown]")).to_have_text(
        re.compile(r"^23 hours, 59 minutes, \d+ seconds?$")
    )
    expect(page.get_by_role("link", name="Report this file")).to_be_visible()

    page.locator("#copy-sha256").click()
    expect(page.locator("#copy-sha256-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == sha256

    with page.expect_download() as download_info:
        page.locator("#download-button").click()
    download = download_info.value
    assert download.suggested_filename == share.name
    assert Path(download.path()).read_bytes() == share.content
    # The design's trap: under no-referrer the browser sends `Origin: null`, and the
    # Download form must work anyway.
    [download_request] = posts
    assert download_request.all_headers().get("origin") == "null"

    expect(page.locator("#download-status")).to_contain_text("used up")
    expect(page.locator("#downloads-left")).to_have_text("0")
    expect(page.locator("#download-button")).to_be_disabled()
    wait_until("the bytes to be deleted", lambda: not storage_path(server, share.name).exists())

    reloaded = page.reload()
    assert reloaded is not None and reloaded.status == 410
    # In plain words: what happened, and what to do if it was not this recipient.
    expect(page.locator("#error-title")).to_have_text("This link no longer works")
    expect(page.locator("#error-message")).to_contain_text("already been downloaded")
    expect(page.locator("#error-message")).to_contain_text("tell the sender")
    again = context.request.post(share.url)
    assert again.status == 410
    assert "already been downloaded" in again.text()


def test_manage_page_shows_the_download_without_a_reload(
    new_context: Callable[..., BrowserContext], server: Server
) -> None:
    share = create_share(server, b"for your eyes only\n", "secret.txt")
    sender = new_context().new_page()
    sender.goto(share.manage_url)
    card = sender.locator("#manage-card")
    expect(card).to_have_attribute("data-status", "active")
    expect(card).to_have_attribute("data-downloads", "0")
    # A reload would lose this; the card is swapped in place.
    sender.evaluate("window.__marker = 1")

    recipient = new_context().new_page()
    recipient.goto(share.url)
    with recipient.expect_download() as download_info:
        recipient.locator("#download-button").click()
    assert Path(download_info.value.path()).read_bytes() == share.content

    # manage.js polls every 5 s.
    expect(sender.locator('#manage-card[data-status="consumed"]')).to_be_visible(timeout=20_000)
    assert sender.evaluate("window.__marker") == 1
    expect(sender.locator("#manage-card")).to_have_attribute("data-downloads", "1")
    expect(sender.locator("#next-step")).to_contain_text("Delivered: the file was downloaded once")
    expect(sender.locator("#manage-announce")).to_have_text(
        "Delivered: downloaded 1 of 1. The file is deleted from the server."
    )
    # Delivered is the happy ending: shown in the theme's green, never in its red.
    status = sender.locator("#manage-card .facts .status")
    expect(status).to_have_text("delivered")
    assert css_colour(status, "color") == css_colour(sender.locator("body"), "--ok")
    expect(sender.locator("#revoke-form")).to_have_count(0)
    expect(sender.locator("figure.qr-box")).to_have_count(0)


def test_password_share_wrong_password_consumes_nothing_right_one_downloads(
    new_context: Callable[..., BrowserContext], server: Server, tmp_path: Path
) -> None:
    content = os.urandom(50 * 1024)
    name = f"locked-{os.urandom(4).hex()}.bin"
    path = tmp_path / name
    path.write_bytes(content)
    sender = new_context().new_page()
    upload_through_page(sender, path, password=SHARE_PHRASE)
    expect(sender.locator(".facts")).to_contain_text("Password")
    link = share_link(sender)

    recipient = new_context().new_page()
    recipient.goto(link)
    password = recipient.locator("#id_password")
    expect(password).to_be_visible()
    password.fill("open barley")
    with recipient.expect_navigation() as refused:
        recipient.locator("#download-button").click()
    assert refused.value is not None and refused.value.status == 403
    expect(recipient.locator("main")).to_contain_text("The password is wrong.")
    expect(recipient.locator("#id_password")).to_have_attribute("aria-invalid", "true")
    expect(recipient.locator("#downloads-left")).to_have_text("1")
    [(_, downloads, _)] = server.shares_named(name)
    assert downloads == 0

    recipient.locator("#id_password").fill(SHARE_PHRASE)
    with recipient.expect_download() as download_info:
        recipient.locator("#download-button").click()
    assert Path(download_info.value.path()).read_bytes() == content
    [(_, downloads, _)] = server.shares_named(name)
    assert downloads == 1
