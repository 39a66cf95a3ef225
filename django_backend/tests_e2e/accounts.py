"""Steps on the account pages that several browser tests take: sign up, become an operator."""

import os
import sqlite3

from playwright.sync_api import Page, expect

from tests.support.browser import Server

# The test accounts' password.
LOGIN_PHRASE = "a long and unusual passphrase 42"


def sign_up(page: Page) -> str:
    """Create an account through the sign-up page (which logs it in); its user name."""
    username = f"sender-{os.urandom(4).hex()}"
    page.goto("/account/signup/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password1").fill(LOGIN_PHRASE)
    page.locator("#id_password2").fill(LOGIN_PHRASE)
    page.get_by_role("button", name="Create the account").click()
    page.wait_for_url("**/account/shares/")
    expect(page.get_by_role("button", name=f"Log out {username}")).to_be_visible()
    return username


def make_operator(server: Server, username: str) -> None:
    """Give an account the admin, as `createsuperuser` would: written into the server's
    database, the one thing the site itself offers no page for."""
    connection = sqlite3.connect(server.database, timeout=10)
    try:
        with connection:
            updated = connection.execute(
                "UPDATE accounts_user SET is_staff = 1, is_superuser = 1 WHERE username = ?",
                (username,),
            ).rowcount
    finally:
        connection.close()
    assert updated == 1, username
