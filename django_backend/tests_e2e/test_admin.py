"""The operators' admin in a browser: the share list fits a 1280 px screen beside the
admin's navigation and filters, and delivered reads as the happy ending."""

import os
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.browser import Server, create_share

from .accounts import make_operator, sign_up

pytestmark = pytest.mark.e2e

SHARE_PHRASE = "open sesame"  # the password of a protected share


@pytest.fixture
def operator(new_context: Callable[..., BrowserContext], server: Server) -> dict:
    """A logged-in operator's browser state (cookies), for contexts of any size."""
    page = new_context().new_page()
    make_operator(server, sign_up(page))
    return page.context.storage_state()


def rgb(page: Page, selector: str, property_name: str) -> tuple[int, int, int]:
    red, green, blue = page.locator(selector).first.evaluate(
        "(element, name) => getComputedStyle(element)[name].match(/\\d+/g).slice(0, 3)",
        property_name,
    )
    return int(red), int(green), int(blue)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_share_list_fits_1280_px_and_shows_delivered_in_green(
    new_context: Callable[..., BrowserContext], server: Server, operator: dict, color_scheme: str
) -> None:
    long_name = f"quarterly-report-final-version-for-the-board-{os.urandom(4).hex()}.pdf"
    create_share(server, b"still waiting\n", long_name, max_downloads=100, password=SHARE_PHRASE)
    delivered = create_share(server, b"delivered\n", f"delivered-{os.urandom(4).hex()}.txt")
    page = new_context(
        storage_state=operator, viewport={"width": 1280, "height": 800}, color_scheme=color_scheme
    ).new_page()
    assert page.context.request.post(delivered.url).status == 200

    page.goto("/admin/shares/share/")

    results = page.locator("#changelist .results")
    expect(results).to_be_visible()
    # The admin scrolls a table too wide for its box sideways, hiding the last columns.
    width, scroll_width = results.evaluate("(box) => [box.clientWidth, box.scrollWidth]")
    assert scroll_width <= width, (scroll_width, width)
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert [header.strip().lower() for header in headers][-2:] == ["created", "expires"]
    expect(page.locator("#result_list .field-expires_display").first).to_be_in_viewport()
    row = page.locator("#result_list tbody tr", has_text=delivered.name)
    expect(row.locator(".share-status-consumed")).to_have_text("delivered")
    red, green, blue = rgb(page, ".share-status-consumed", "backgroundColor")
    assert green > red and green > blue, (red, green, blue)
    expect(page.locator("#result_list tbody tr", has_text=long_name)).to_contain_text("password")
