"""The upload page in a browser: choosing or dropping a file, progress, cancel, size limit."""

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.support.browser import MAX_UPLOAD_SIZE, Server, share_link
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e

MANAGE_PATH = re.compile(r"/m/[\w-]+$")

# The page navigates away the moment the upload is answered, faster than a test could
# look: this records every value and text the progress bar shows (and whether its panel
# showed) in sessionStorage, which survives the navigation within the tab.
PROGRESS_RECORDER = """
addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("upload-progress-bar");
  const text = document.getElementById("upload-progress-text");
  const panel = document.getElementById("upload-progress");
  if (!bar || !text || !panel) {
    return;
  }
  const seen = { values: [], texts: [], panelShown: false };
  const save = () => sessionStorage.setItem("e2e-progress", JSON.stringify(seen));
  new MutationObserver(() => {
    seen.values.push(Number(bar.value));
    save();
  }).observe(bar, { attributes: true, attributeFilter: ["value"] });
  new MutationObserver(() => {
    seen.texts.push(text.textContent);
    save();
  }).observe(text, { childList: true, characterData: true, subtree: true });
  new MutationObserver(() => {
    seen.panelShown ||= !panel.hidden;
    save();
  }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
});
"""


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Limit the page's upload speed (Chromium's network emulation, through CDP)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send(
        "Network.emulateNetworkConditions", {**conditions, "uploadThroughput": bytes_per_second}
    )


def api_uploads(requests: list[Request]) -> list[Request]:
    return [request for request in requests if request.url.endswith("/api/v1/shares")]


def test_upload_through_the_file_input_shows_progress_then_the_link_to_copy_and_a_qr_code(
    context: BrowserContext, page: Page, server: Server, tmp_path: Path
) -> None:
    content = os.urandom(4 * 1024**2)
    path = tmp_path / "quarterly report.pdf"
    path.write_bytes(content)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    context.add_init_script(PROGRESS_RECORDER)
    # On loopback 4 MB go in one piece; at 4 MB/s the bar has time to show its steps.
    throttle_uploads(page, 4 * 1024**2)

    page.goto("/")
    expect(page.locator("#upload-form")).to_have_attribute(
        "data-max-upload-size", str(MAX_UPLOAD_SIZE)
    )
    page.locator("#id_file").set_input_files(path)
    expect(page.locator("#file-chosen")).to_have_text("Selected: quarterly report.pdf (4.0 MB)")
    page.locator("#upload-submit").click()
    page.wait_for_url(MANAGE_PATH)

    progress = json.loads(page.evaluate("sessionStorage.getItem('e2e-progress')") or "{}")
    assert progress.get("panelShown"), progress
    values = progress["values"]
    assert values and values[-1] == 100, values
    assert values == sorted(values), values
    assert any(0 < value < 100 for value in values), values
    texts = progress["texts"]
    assert any(re.match(r"\d+% · [\d.]+ (bytes|KB|MB) of 4\.0 MB", text) for text in texts), texts
    assert "100% · sent. Checking the file…" in texts, texts

    expect(page.locator("#manage-title")).to_contain_text("quarterly report.pdf")
    expect(page.locator("#manage-card")).to_have_attribute("data-status", "active")
    expect(page.locator("#next-step")).to_contain_text("This link works once")
    expect(page.locator("#manage-card .mono")).to_have_text(hashlib.sha256(content).hexdigest())
    link = share_link(page)

    page.locator("#copy-share-link").click()
    expect(page.locator("#copy-share-link-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link

    qr = page.locator("figure.qr-box svg.qr")
    expect(qr).to_be_visible()
    # manage.js gives segno's fixed-size SVG a viewBox so that CSS can scale it.
    expect(qr).to_have_attribute("viewBox", re.compile(r"^0 0 \d+(\.\d+)? \d+(\.\d+)?$"))
    assert page.locator("#manage-link").input_value() == page.url


def test_upload_by_dropping_a_file_on_the_page(page: Page) -> None:
    content = os.urandom(100 * 1024)
    name = "dropped-notes.bin"
    page.goto("/")
    expect(page.locator("#dropzone-hint")).to_be_visible()
    # A file dragged in from the desktop: a DataTransfer carrying a File, built in the page.
    transfer = page.evaluate_handle(
        """([name, encoded]) => {
          const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], name, { type: "application/octet-stream" }));
          return transfer;
        }""",
        [name, base64.b64encode(content).decode()],
    )
    overlay = page.locator("#drop-overlay")
    expect(overlay).to_be_hidden()
    page.dispatch_event("body", "dragenter", {"dataTransfer": transfer})
    expect(overlay).to_be_visible()
    overlay.dispatch_event("dragover", {"dataTransfer": transfer})
    overlay.dispatch_event("drop", {"dataTransfer": transfer})
    expect(overlay).to_be_hidden()
    expect(page.locator("#file-chosen")).to_have_text(f"Selected: {name} (100 KB)")
    assert page.locator("#id_file").evaluate("input => input.files[0]?.name") == name

    page.locator("#upload-submit").click()
    page.wait_for_url(MANAGE_PATH)
    expect(page.locator("#manage-title")).to_contain_text(name)
    expect(page.locator("#manage-card .mono")).to_have_text(hashlib.sha256(content).hexdigest())


def test_cancel_during_upload_leaves_nothing_on_the_server(
    page: Page, server: Server, tmp_path: Path
) -> None:
    name = f"too-slow-{os.urandom(4).hex()}.bin"
    path = tmp_path / name
    with path.open("wb") as large:
        large.truncate(64 * 1024**2)
    stored_before = server.stored_files()
    assert not server.spooled_files()
    # About 2 MB/s up: the 64 MiB take half a minute, ample time to press Cancel.
    throttle_uploads(page, 2 * 1024**2)
    page.goto("/")
    page.locator("#id_file").set_input_files(path)
    page.locator("#upload-submit").click()
    expect(page.locator("#upload-progress")).to_be_visible()
    page.wait_for_function("() => document.getElementById('upload-progress-bar').value >= 2")
    # The server is receiving: part of the file is spooled to its temporary directory.
    wait_until("the server to spool the upload", server.spooled_files)

    page.locator("#upload-cancel").click()
    expect(page.locator("#upload-status")).to_have_text("Upload cancelled. Nothing was shared.")
    expect(page.locator("#upload-progress")).to_be_hidden()
    expect(page.locator("#upload-submit")).to_be_enabled()
    assert page.locator("#id_file").evaluate("input => input.files.length") == 0
    assert page.url == f"{server.url}/"

    wait_until("the partial upload to be deleted", lambda: not server.spooled_files())
    assert server.shares_named(name) == []
    assert server.stored_files() == stored_before


def test_file_over_the_size_limit_is_refused_in_the_browser_without_a_request(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    # upload.js reads the limit once, before DOMContentLoaded: lower it as the document
    # becomes interactive, after parsing and before the deferred scripts run.
    context.add_init_script(
        """document.addEventListener("readystatechange", () => {
          const form = document.getElementById("upload-form");
          if (document.readyState === "interactive" && form) {
            form.dataset.maxUploadSize = "10";
          }
        });"""
    )
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    too_large = tmp_path / "eleven.txt"
    too_large.write_bytes(b"x" * 11)
    just_fits = tmp_path / "ten.txt"
    just_fits.write_bytes(b"x" * 10)

    page.goto("/")
    expect(page.locator("#upload-form")).to_have_attribute("data-max-upload-size", "10")
    page.locator("#id_file").set_input_files(too_large)
    file_error = page.locator("#file-error")
    expect(file_error).to_be_visible()
    expect(file_error).to_contain_text("“eleven.txt” is 11 bytes; the limit is 10 bytes.")
    expect(page.locator("#id_file")).to_have_attribute("aria-invalid", "true")
    page.locator("#upload-submit").click()
    expect(file_error).to_be_visible()
    expect(page.locator("#id_file")).to_be_focused()
    expect(page.locator("#upload-progress")).to_be_hidden()
    assert api_uploads(requests) == []
    assert [request for request in requests if request.method == "POST"] == []

    # The same page sends a file within the limit: the check above is the size, and the
    # request recorder sees uploads.
    page.locator("#id_file").set_input_files(just_fits)
    expect(file_error).to_be_hidden()
    page.locator("#upload-submit").click()
    page.wait_for_url(MANAGE_PATH)
    assert len(api_uploads(requests)) == 1
