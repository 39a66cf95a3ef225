"""The sender's page in a browser: revoking asks first, then the link is gone; both links
show whole on a phone and a desktop."""

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, Request, expect

from tests.support.browser import Server, create_share

pytestmark = pytest.mark.e2e


def test_revoke_asks_first_and_only_a_confirmed_revoke_ends_the_share(
    context: BrowserContext, page: Page, server: Server
) -> None:
    share = create_share(server, b"changed my mind\n", "draft-contract.txt")
    [(storage_name,)] = server.query(
        "SELECT storage_name FROM shares_share WHERE name = ?", (share.name,)
    )
    stored = server.media_root / storage_name
    assert stored.exists()
    dialogs: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        if answer["accept"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    revokes: list[Request] = []
    page.on(
        "request", lambda request: revokes.append(request) if "/revoke" in request.url else None
    )
    page.goto(share.manage_url)
    card = page.locator("#manage-card")
    expect(card).to_have_attribute("data-status", "active")

    # Dismissed: the form is not sent. (click() waits for a navigation it starts.)
    page.locator("#revoke-button").click()
    assert dialogs == [
        "confirm: Revoke this share? The link stops working and the file is deleted now. "
        "This cannot be undone."
    ]
    assert revokes == []
    expect(card).to_have_attribute("data-status", "active")
    assert server.shares_named(share.name)[0][2] is None  # revoked_at
    assert context.request.get(share.url).status == 200

    answer["accept"] = True
    with page.expect_navigation() as navigation:
        page.locator("#revoke-button").click()
    assert navigation.value is not None and navigation.value.status == 200
    assert page.url == share.manage_url  # 303 back to the manage page
    assert len(dialogs) == 2
    # Sent from a no-referrer page: `Origin: null`, and the revoke must work anyway.
    [revoke] = revokes
    assert revoke.method == "POST"
    assert revoke.all_headers().get("origin") == "null"
    expect(page.locator("#manage-card")).to_have_attribute("data-status", "revoked")
    expect(page.locator("#next-step")).to_contain_text("This link was revoked")
    expect(page.locator("#revoke-form")).to_have_count(0)
    assert server.shares_named(share.name)[0][2] is not None
    assert not stored.exists()
    assert context.request.get(share.url).status == 410


def fits_whole(page: Page, selector: str) -> bool:
    """Whether a text field shows all its text: nothing scrolled out of sight, and the
    field itself within the window."""
    return page.locator(selector).evaluate(
        """(field) => {
            const box = field.getBoundingClientRect();
            return field.scrollWidth <= field.clientWidth
                && field.scrollHeight <= field.clientHeight + 1
                && box.left >= 0 && box.right <= window.innerWidth;
        }"""
    )


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_on_a_phone_both_links_show_whole_and_there_is_no_code_to_scan(
    new_context: Callable[..., BrowserContext], server: Server, color_scheme: str
) -> None:
    share = create_share(server, b"for the phone\n", "phone.txt")
    context = new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        color_scheme=color_scheme,
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.goto(share.manage_url)

    assert page.locator("#share-link").input_value() == share.url
    assert fits_whole(page, "#share-link")
    assert fits_whole(page, "#manage-link")
    expect(page.locator("#copy-share-link")).to_be_visible()
    # The page is already on the phone: no code to scan with one.
    expect(page.locator("figure.qr-box")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The sender's own link, with its reason and its Copy button.
    expect(page.locator(".keep-address")).to_contain_text("your only way back here")
    page.locator("#copy-manage-link").click()
    expect(page.locator("#copy-manage-link-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == share.manage_url


def test_on_a_desktop_the_links_fit_and_the_code_to_scan_is_shown(
    new_context: Callable[..., BrowserContext], server: Server
) -> None:
    share = create_share(server, b"for the desktop\n", "desktop.txt")
    page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(share.manage_url)

    assert fits_whole(page, "#share-link")
    assert fits_whole(page, "#manage-link")
    expect(page.locator("figure.qr-box svg.qr")).to_be_visible()
