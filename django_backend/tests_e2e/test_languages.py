"""The whole way from upload to download in another language, in a real browser: once in
the language the browser asks for (German), once switching with the footer's switcher,
whose form works on the upload page and whose links work on the share pages, where a form
posted under `no-referrer` would fail its CSRF check."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.browser import Server, share_link

pytestmark = pytest.mark.e2e

MANAGE_PATH = re.compile(r"/m/[\w-]+$")


def download_bytes(page: Page) -> bytes:
    with page.expect_download() as download_info:
        page.locator("#download-button").click()
    return Path(download_info.value.path()).read_bytes()


def test_upload_to_download_in_the_language_the_browser_asks_for(
    new_context, server: Server, tmp_path: Path
) -> None:
    sender = new_context(locale="de-DE")
    sender.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = sender.new_page()
    content = os.urandom(2048)
    path = tmp_path / "bericht.pdf"
    path.write_bytes(content)

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#upload-title")).to_have_text("Datei teilen")
    page.locator("#id_file").set_input_files(path)
    # The page's script, in German, with the German decimal comma.
    expect(page.locator("#file-chosen")).to_have_text("Ausgewählt: bericht.pdf (2,0 KB)")
    page.get_by_role("button", name="Hochladen und Link erhalten").click()
    page.wait_for_url(MANAGE_PATH)

    expect(page.locator("#manage-title")).to_have_text("Ihre Freigabe: bericht.pdf")
    expect(page.locator("#next-step")).to_contain_text("Dieser Link funktioniert einmal")
    expect(page.locator("#copy-share-link")).to_have_text("Kopieren")
    page.locator("#copy-share-link").click()
    expect(page.locator("#copy-share-link-status")).to_have_text("Kopiert")
    link = share_link(page)

    recipient = new_context(locale="de-DE").new_page()
    recipient.goto(link)
    expect(recipient.locator(".eyebrow")).to_have_text("Jemand hat eine Datei mit Ihnen geteilt")
    expect(recipient.locator("time#expires-in")).to_have_text(
        re.compile(r"^23 Stunden, 59 Minuten, \d+ Sekunden?$")
    )
    assert download_bytes(recipient) == content
    expect(recipient.locator("#download-status")).to_contain_text(
        "Dieser Link ist jetzt aufgebraucht"
    )

    # The sender's page sees the download by itself and says so in German.
    expect(page.locator("#next-step")).to_contain_text(
        "Zugestellt: Die Datei wurde einmal heruntergeladen", timeout=30_000
    )
    expect(page.locator(".timeline")).to_contain_text("Download gestartet · Browser")

    again = recipient.goto(link)
    assert again is not None and again.status == 410
    expect(recipient.locator("#error-title")).to_have_text("Dieser Link funktioniert nicht mehr")
    expect(recipient.locator("#error-message")).to_contain_text(
        "Diese Datei wurde bereits heruntergeladen"
    )


def test_upload_to_download_switching_language_on_the_way(
    context: BrowserContext, page: Page, server: Server, tmp_path: Path
) -> None:
    content = b"Bonjour, le monde\n" * 10
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    switcher = page.get_by_role("navigation", name=re.compile("Language|Langue|Taal"))

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    # On the upload page, the switcher is Django's set_language form (with its CSRF token).
    switcher.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert page.url == f"{server.url}/"
    expect(page.locator("#upload-title")).to_have_text("Partager un fichier")

    page.locator("#id_file").set_input_files(path)
    page.get_by_role("button", name="Envoyer et obtenir le lien").click()
    page.wait_for_url(MANAGE_PATH)
    manage_url = page.url
    expect(page.locator("#manage-title")).to_have_text("Votre partage\u00a0: notes.txt")

    # The manage page sends no Referer: the switcher's links set the language by GET and
    # come back to the same address, without the parameter.
    expect(switcher.get_by_role("button")).to_have_count(0)
    switcher.get_by_role("link", name="Nederlands").click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    assert page.url == manage_url
    expect(page.locator("#manage-title")).to_have_text("Uw gedeelde bestand: notes.txt")
    # The date in the sentence is written in the page's language, not the browser's.
    expires = page.locator("#next-step time")
    dutch_date = expires.evaluate(
        """(time) => new Date(time.getAttribute("datetime")).toLocaleString(
            "nl", { dateStyle: "medium", timeStyle: "short" })"""
    )
    expect(expires).to_have_text(dutch_date)
    link = share_link(page)

    recipient = context.new_page()
    recipient.goto(link)
    expect(recipient.locator(".eyebrow")).to_have_text("Er is een bestand met u gedeeld")
    expect(recipient.get_by_role("button", name="Downloaden")).to_be_visible()
    assert download_bytes(recipient) == content
    expect(recipient.locator("#download-status")).to_contain_text("Deze link is nu opgebruikt")

    # Back to English, from a share page.
    page.goto(manage_url)
    switcher.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#next-step")).to_contain_text("Delivered: the file was downloaded once")
