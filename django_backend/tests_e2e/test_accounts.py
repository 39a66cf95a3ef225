"""Accounts in a browser: the forms that act on a session keep their CSRF protection and
must work from the pages they are on (shared/design.md §3)."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Server, create_share, upload_through_page

pytestmark = pytest.mark.e2e

# The test account's password.
LOGIN_PHRASE = "a long and unusual passphrase 42"


def sign_up(page: Page) -> str:
    username = f"sender-{os.urandom(4).hex()}"
    page.goto("/account/signup/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password1").fill(LOGIN_PHRASE)
    page.locator("#id_password2").fill(LOGIN_PHRASE)
    page.get_by_role("button", name="Create the account").click()
    page.wait_for_url("**/account/shares/")
    expect(page.get_by_role("button", name=f"Log out {username}")).to_be_visible()
    return username


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
    expect(page.locator("main .notice")).to_have_text(f"“{name}” is revoked and its file deleted.")
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
