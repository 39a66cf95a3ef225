"""The sender's page in a browser: revoking asks first, then the link is gone."""

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
