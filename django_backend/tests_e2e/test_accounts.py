"""Accounts in a browser: the forms that act on a session keep their CSRF protection and
must work from the pages they are on (shared/design.md §3)."""

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.browser import Server, create_share, upload_through_page

from .accounts import LOGIN_PHRASE, sign_up

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")


def test_sign_up_upload_revoke_in_my_shares_log_out_and_in(
    page: Page, server: Server, tmp_path: Path
) -> None:
    username = sign_up(page)
    expect(page.locator("main")).to_contain_text("Nothing yet.")

    # The page's script sends the upload to the API with the session cookie and the
    # X-CSRFToken header: the share is the user's.
    name = f"mine-{os.urandom(4).hex()}.txt"
    path = tmp_path / name
    path.write_text("owned by an account\n")
    upload_through_page(page, path)
    [(owner,)] = server.query(
        "SELECT u.username FROM shares_share s JOIN accounts_user u ON u.id = s.owner_id "
        "WHERE s.name = ?",
        (name,),
    )
    assert owner == username

    page.get_by_role("link", name="My shares").click()
    page.wait_for_url("**/account/shares/")
    row = page.locator("table.shares tbody tr", has_text=name)
    expect(row.locator(".status")).to_have_text("active")
    row.get_by_role("button", name=f"Revoke {name}").click()
    page.wait_for_url("**/account/shares/")
    expect(page.locator("main .notice-info")).to_have_text(
        f"“{name}” is revoked and its file deleted."
    )
    expect(row.locator(".status")).to_have_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    assert server.shares_named(name)[0][2] is not None

    page.get_by_role("button", name=f"Log out {username}").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    response = page.goto("/account/shares/")
    assert response is not None and "/account/login/" in page.url

    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(LOGIN_PHRASE)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account/shares/")
    expect(page.locator("table.shares tbody tr", has_text=name).locator(".status")).to_have_text(
        "revoked"
    )


def test_log_out_from_a_share_page(page: Page, server: Server) -> None:
    """The navigation's Log out form is on every page, the no-referrer share pages too,
    where the browser sends it with `Origin: null`."""
    username = sign_up(page)
    share = create_share(server, b"hello\n", "hello.txt")
    page.goto(share.manage_url)
    # Here the navigation links to a log-out page: a form on this page would be posted
    # with `Origin: null` and fail its CSRF check.
    page.get_by_role("link", name=f"Log out {username}").click()
    page.wait_for_url("**/account/logout/")
    with page.expect_navigation() as navigation:
        page.locator("main").get_by_role("button", name=f"Log out {username}").click()
    assert navigation.value is not None
    assert navigation.value.status == 200, page.locator("main").inner_text()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_my_shares_in_local_time_and_back_to_a_share_whose_manage_page_is_lost(
    new_context: Callable[..., BrowserContext], server: Server, tmp_path: Path
) -> None:
    # Nine hours ahead of UTC, all year round: every time on the page must move.
    page = new_context(timezone_id="Asia/Tokyo", locale="en-US").new_page()
    sign_up(page)
    name = f"lost-tab-{os.urandom(4).hex()}.txt"
    path = tmp_path / name
    path.write_text("the manage tab was closed\n")
    upload_through_page(page, path)
    [(expires_at,)] = server.query("SELECT expires_at FROM shares_share WHERE name = ?", (name,))
    in_tokyo = datetime.fromisoformat(expires_at).replace(tzinfo=UTC).astimezone(TOKYO)

    # The sender closed the manage tab; their account still knows the share.
    page.goto("/account/shares/")
    row = page.locator("table.shares tbody tr", has_text=name)
    expires = row.locator("time")
    expect(expires).not_to_contain_text("UTC")
    expect(expires).to_contain_text(f"{in_tokyo.hour % 12 or 12}:{in_tokyo:%M}")
    expect(expires).to_contain_text(f"{in_tokyo:%b} {in_tokyo.day}, {in_tokyo.year}")

    row.get_by_role("link", name=name).click()
    page.wait_for_url(re.compile(r"/account/shares/\d+/$"))
    expect(page.locator("#owner-title")).to_contain_text(name)
    expect(page.locator("#next-step")).to_contain_text("This link works once")
    expect(page.locator(".timeline")).to_contain_text("Created")
    expect(page.locator("#no-link-here")).to_contain_text("can't be shown again")
    expect(page.locator(".facts time").first).not_to_contain_text("UTC")
    assert "/s/" not in page.content()

    # Revoke asks first (manage.js), then posts the session's form with its CSRF token.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#revoke-button").click()
    page.wait_for_url("**/account/shares/")
    expect(page.locator("main .notice-info")).to_have_text(
        f"“{name}” is revoked and its file deleted."
    )
    assert server.shares_named(name)[0][2] is not None
    row.get_by_role("link", name=name).click()
    expect(page.locator(".facts .status")).to_have_text("revoked")
    expect(page.locator("#revoke-form")).to_have_count(0)


def test_a_new_api_token_is_announced_as_good_news_with_a_copy_button(
    context: BrowserContext, page: Page, server: Server
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    sign_up(page)
    page.goto("/account/tokens/")
    page.locator("#id_name").fill("backup script")
    page.get_by_role("button", name="Create a token").click()

    box = page.locator("#token-created")
    expect(box).to_contain_text("Copy it now")
    # Not the red of an error: the accent colour of information.
    border = box.evaluate("(element) => getComputedStyle(element).borderLeftColor")
    danger, accent = page.evaluate(
        """() => ["--danger", "--accent"].map((name) => {
            const probe = document.createElement("span");
            probe.style.color = getComputedStyle(document.body).getPropertyValue(name);
            document.body.append(probe);
            const colour = getComputedStyle(probe).color;
            probe.remove();
            return colour;
        })"""
    )
    assert border == accent != danger
    token = page.locator("#new-token").input_value()
    assert token.startswith("ots_")
    page.locator("#copy-new-token").click()
    expect(page.locator("#copy-new-token-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token
