"""axe-core on the main pages, light and dark: no serious or critical violation.

axe is injected as an inline script, which the site's CSP forbids (no inline scripts):
these contexts bypass the CSP, and only these.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.support.browser import Server, create_share, upload_through_page

from .accounts import sign_up

pytestmark = pytest.mark.e2e

RUN_AXE = """async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    targets: violation.nodes.map((node) => node.target.join(" ")),
    summaries: violation.nodes.map((node) => node.failureSummary),
  }));
}"""


def serious_violations(page: Page, axe_script: Path) -> list[str]:
    page.add_script_tag(path=axe_script)
    found = []
    for violation in page.evaluate(RUN_AXE):
        if violation["impact"] in {"serious", "critical"}:
            for target, summary in zip(violation["targets"], violation["summaries"], strict=True):
                detail = " ".join(summary.split())
                found.append(f"{violation['id']} ({violation['impact']}) at {target}: {detail}")
    return found


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_main_pages_have_no_serious_accessibility_violations(
    new_context: Callable[..., BrowserContext],
    server: Server,
    axe_script: Path,
    color_scheme: str,
    tmp_path: Path,
) -> None:
    share = create_share(server, b"accessible to all\n", "notes.txt")
    used = create_share(server, b"already fetched\n", "fetched.txt")
    page = new_context(bypass_csp=True, color_scheme=color_scheme).new_page()
    assert page.context.request.post(used.url).status == 200
    pages = {
        "upload": "/",
        "landing": share.url,
        "manage": share.manage_url,
        "login": "/account/login/",
        "gone (410)": used.url,
    }
    report = []
    for label, url in pages.items():
        response = page.goto(url)
        assert response is not None and response.status in {200, 410}, (label, response)
        report += [f"{label}: {line}" for line in serious_violations(page, axe_script)]

    # The account's pages: My shares, one share of the owner's, a new API token.
    sign_up(page)
    owned = tmp_path / "owned.txt"
    owned.write_text("owned\n")
    upload_through_page(page, owned)
    page.goto("/account/shares/")
    report += [f"my shares: {line}" for line in serious_violations(page, axe_script)]
    page.get_by_role("link", name="owned.txt").click()
    page.wait_for_url(re.compile(r"/account/shares/\d+/$"))
    report += [f"owner page: {line}" for line in serious_violations(page, axe_script)]
    page.goto("/account/tokens/")
    page.locator("#id_name").fill("script")
    page.get_by_role("button", name="Create a token").click()
    page.locator("#token-created").wait_for()
    report += [f"new token: {line}" for line in serious_violations(page, axe_script)]
    assert report == [], f"{color_scheme} scheme:\n" + "\n".join(report)
