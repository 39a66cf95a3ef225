"""Without JavaScript: the upload page is a plain multipart form, the Download button a
plain POST form."""

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.browser import share_link

pytestmark = pytest.mark.e2e


def test_upload_and_download_work_without_javascript(
    new_context: Callable[..., BrowserContext], tmp_path: Path
) -> None:
    content = os.urandom(200 * 1024)
    path = tmp_path / "no-script.bin"
    path.write_bytes(content)

    sender = new_context(java_script_enabled=False).new_page()
    sender.goto("/")
    expect(sender.locator("#dropzone-hint")).to_be_hidden()  # a promise only the script keeps
    sender.locator("#id_file").set_input_files(path)
    sender.locator("#id_expires_in").select_option("3600")
    sender.locator("#id_max_downloads").fill("2")
    with sender.expect_navigation() as navigation:
        sender.locator("#upload-submit").click()
    landed = navigation.value
    assert landed is not None and landed.status == 200
    posted = landed.request.redirected_from
    assert posted is not None and posted.method == "POST" and posted.url.endswith("/")
    redirect = posted.response()
    assert redirect is not None and redirect.status == 303
    assert re.search(r"/m/[\w-]+$", sender.url)
    expect(sender.locator("#next-step")).to_contain_text("This link works 2 times")
    expect(sender.locator("#manage-card .mono")).to_have_text(hashlib.sha256(content).hexdigest())
    expect(sender.locator("#copy-share-link")).to_be_hidden()  # no dead buttons
    link = share_link(sender)

    recipient = new_context(java_script_enabled=False).new_page()
    recipient.goto(link)
    expect(recipient.locator("#downloads-left")).to_have_text("2")
    for _ in range(2):
        with recipient.expect_download() as download_info:
            recipient.locator("#download-button").click()
        download = download_info.value
        assert download.suggested_filename == "no-script.bin"
        assert Path(download.path()).read_bytes() == content
    gone = recipient.reload()
    assert gone is not None and gone.status == 410
