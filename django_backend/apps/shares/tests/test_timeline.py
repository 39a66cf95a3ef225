"""The sender's timeline ("What happened"), who the recipient was, reports and holds.

Everything goes through the test client and the real services, database and files on disk;
time is moved with time_machine, never waited for.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client

from apps.shares.clients import client_fingerprint, describe_user_agent
from apps.shares.models import AbuseReport, Share, ShareEvent
from apps.shares.services import maintenance, moderation
from tests.support.shares import page_download, stored_files

NOW = datetime(2030, 3, 1, 12, 0, 0, tzinfo=UTC)
CONTENT = b"Draft contract, version 3.\n"
PASSWORD = "correct horse battery staple"

SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CURL = "curl/8.5.0"

LINK_PREVIEW_BOTS = [
    pytest.param(SLACKBOT, "Slack link preview", id="slackbot"),
    pytest.param(
        "Slackbot 1.0 (+https://api.slack.com/robots)", "Slack link preview", id="slackbot-plain"
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
        "Microsoft Teams link preview",
        id="teams-skypeuripreview",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/91.0.4472.124 Safari/537.36 Edg/91.0.864.59 "
        "MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview",
        "Outlook link preview",
        id="outlook-microsoftpreview",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Discord link preview",
        id="discordbot",
    ),
    pytest.param("WhatsApp/2.23.20.0 A", "WhatsApp link preview", id="whatsapp"),
    pytest.param("TelegramBot (like TwitterBot)", "Telegram link preview", id="telegrambot"),
    pytest.param(
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Facebook link preview",
        id="facebookexternalhit",
    ),
    pytest.param("Twitterbot/1.0", "X (Twitter) link preview", id="twitterbot"),
    pytest.param(
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "LinkedIn link preview",
        id="linkedinbot",
    ),
]

BROWSERS = [
    pytest.param(CHROME, id="chrome-windows"),
    pytest.param(FIREFOX, id="firefox-linux"),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        id="safari-macos",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        id="chrome-android",
    ),
    pytest.param(
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        id="firefox-android",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        id="safari-iphone",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        id="chrome-iphone",
    ),
]

# One entry of the manage page's "What happened" list: its kind, its time, its text.
TIMELINE_ENTRY = re.compile(
    r'<li class="event-(?P<kind>[a-z_]+)"><time datetime="(?P<at>[^"]+)"[^>]*>[^<]*</time>'
    r"\s*(?P<text>[^<]*?)\s*</li>"
)


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache, which outlives a test: start each at zero."""
    cache.clear()
    yield
    cache.clear()


def timeline(client: Client, manage_token: str) -> list[tuple[str, str]]:
    """(kind, text) of every entry on the manage page, checking their times run forward."""
    page = client.get(f"/m/{manage_token}")
    assert page.status_code == 200
    entries = TIMELINE_ENTRY.findall(page.content.decode())
    times = [datetime.fromisoformat(at) for _, at, _ in entries]
    assert times == sorted(times)
    return [(kind, text) for kind, _, text in entries]


def download(client: Client, share_token: str, **extra: object) -> tuple[int, bytes]:
    """POST the Download form; the status and the whole body. Reading a streamed body to
    the end makes the test client close the response as a WSGI server would, which is when
    the download is recorded as completed."""
    response = page_download(client, f"/s/{share_token}", **extra)
    if response.streaming:
        return response.status_code, b"".join(response.streaming_content)
    return response.status_code, response.content


def kinds(share: Share) -> list[str]:
    return list(share.events.values_list("kind", flat=True))


# --- who is asking ----------------------------------------------------------------------


@pytest.mark.parametrize(("user_agent", "label"), LINK_PREVIEW_BOTS)
def test_link_preview_bots_are_named_after_their_service(user_agent, label):
    assert describe_user_agent(user_agent) == (label, True)


@pytest.mark.parametrize("user_agent", BROWSERS)
def test_desktop_and_mobile_browsers_are_browsers_not_bots(user_agent):
    assert describe_user_agent(user_agent) == ("browser", False)


def test_curl_is_an_api_client_not_a_bot():
    assert describe_user_agent(CURL) == ("API client", False)


def test_client_fingerprint_is_stable_per_ip_distinct_across_ips_and_keyed(settings):
    first = client_fingerprint("203.0.113.7")

    assert first == client_fingerprint("203.0.113.7")
    assert first != client_fingerprint("203.0.113.8")
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    # Keyed with SECRET_KEY: without it nobody can hash all IPv4 addresses and look one up.
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert client_fingerprint("203.0.113.7") != first


# --- the timeline -------------------------------------------------------------------------


@pytest.mark.django_db
def test_slack_preview_then_browser_download_make_the_whole_timeline(
    client, make_share, media_root
):
    created = make_share(CONTENT, name="contract.pdf")
    share_token = created.share_token

    preview = client.get(f"/s/{share_token}", HTTP_USER_AGENT=SLACKBOT)

    assert preview.status_code == 200
    opened = ShareEvent.objects.get(kind=ShareEvent.Kind.OPENED)
    assert (opened.agent, opened.is_bot) == ("Slack link preview", True)
    assert opened.client == client_fingerprint("127.0.0.1")
    # The preview did not use the link up.
    share = Share.objects.get()
    assert (share.downloads, share.status) == (0, Share.Status.ACTIVE)
    assert stored_files(media_root) == [media_root / share.storage_name]
    assert 'http-equiv="refresh"' in client.get(f"/m/{created.manage_token}").content.decode()

    assert download(client, share_token, HTTP_USER_AGENT=CHROME) == (200, CONTENT)

    share.refresh_from_db()
    assert share.status == Share.Status.CONSUMED
    assert share.purged_at is not None
    assert stored_files(media_root) == []
    browser_events = ShareEvent.objects.filter(
        kind__in=[ShareEvent.Kind.DOWNLOAD_STARTED, ShareEvent.Kind.DOWNLOAD_COMPLETED]
    )
    assert [(e.agent, e.is_bot) for e in browser_events] == [("browser", False)] * 2
    assert timeline(client, created.manage_token) == [
        ("created", "Created"),
        ("opened", "Page opened · Slack link preview"),
        ("download_started", "Download started · browser"),
        ("download_completed", "Download completed · browser"),
        ("purged", "File deleted"),
    ]
    assert 'http-equiv="refresh"' not in client.get(f"/m/{created.manage_token}").content.decode()


@pytest.mark.django_db
def test_a_wrong_password_is_recorded_and_consumes_nothing(client, make_share):
    created = make_share(CONTENT, password=PASSWORD)

    status, _ = download(
        client, created.share_token, data={"password": "guess"}, HTTP_USER_AGENT=FIREFOX
    )

    assert status == 403
    assert kinds(created.share) == ["created", "wrong_password"]
    wrong = created.share.events.get(kind=ShareEvent.Kind.WRONG_PASSWORD)
    assert (wrong.agent, wrong.is_bot) == ("browser", False)
    assert Share.objects.get().downloads == 0
    assert timeline(client, created.manage_token)[-1] == (
        "wrong_password",
        "Wrong password · browser",
    )


@pytest.mark.django_db
def test_revoking_is_recorded_then_the_file_deletion(client, make_share):
    created = make_share(CONTENT)

    response = client.post(f"/m/{created.manage_token}/revoke", HTTP_USER_AGENT=FIREFOX)

    assert response.status_code == 303
    assert timeline(client, created.manage_token) == [
        ("created", "Created"),
        ("revoked", "Revoked · browser"),
        ("purged", "File deleted"),
    ]


@pytest.mark.django_db
def test_no_event_or_report_stores_the_client_ip(client, make_share):
    ip = "198.51.100.23"
    created = make_share(CONTENT, password=PASSWORD, max_downloads=2)
    share_token = created.share_token

    assert client.get(f"/s/{share_token}", REMOTE_ADDR=ip).status_code == 200
    assert download(client, share_token, data={"password": "guess"}, REMOTE_ADDR=ip)[0] == 403
    reported = client.post(
        f"/s/{share_token}/report", {"reason": "malware", "note": "odd"}, REMOTE_ADDR=ip
    )
    assert reported.status_code == 200
    right = download(client, share_token, data={"password": PASSWORD}, REMOTE_ADDR=ip)
    assert right == (200, CONTENT)
    revoked = client.post(f"/m/{created.manage_token}/revoke", REMOTE_ADDR=ip)
    assert revoked.status_code == 303

    events = list(ShareEvent.objects.values())
    reports = list(AbuseReport.objects.values())
    assert {e["kind"] for e in events} >= {
        "opened",
        "wrong_password",
        "reported",
        "download_started",
        "download_completed",
        "revoked",
    }
    assert len(reports) == 1
    # Each of the client's events carries its fingerprint instead of the address.
    assert {e["client"] for e in events if e["agent"] != "system"} == {client_fingerprint(ip)}
    assert reports[0]["reporter"] == client_fingerprint(ip)
    for row in events + reports:
        for field, value in row.items():
            assert ip not in str(value), f"{field} holds the client IP: {row}"


@pytest.mark.django_db
def test_the_client_hash_tells_two_ips_apart_and_one_ip_from_itself(client, make_share):
    created = make_share(CONTENT)
    url = f"/s/{created.share_token}"

    for ip in ("192.0.2.10", "192.0.2.10", "192.0.2.11"):
        assert client.get(url, REMOTE_ADDR=ip).status_code == 200

    first, again, other = created.share.events.filter(kind=ShareEvent.Kind.OPENED).values_list(
        "client", flat=True
    )
    assert first == again == client_fingerprint("192.0.2.10")
    assert other == client_fingerprint("192.0.2.11")
    assert first != other


# --- reports ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_report_page_shows_the_form_with_every_reason(client, make_share):
    created = make_share(CONTENT, name="invoice.zip")

    response = client.get(f"/s/{created.share_token}/report")

    assert response.status_code == 200
    html = response.content.decode()
    assert "invoice.zip" in html
    for reason in ("malware", "illegal", "copyright", "other"):
        assert f'name="reason" value="{reason}"' in html
    assert 'name="note"' in html
    assert AbuseReport.objects.count() == 0


@pytest.mark.django_db
def test_a_report_is_stored_and_recorded_and_leaves_the_link_working(client, make_share):
    created = make_share(CONTENT)

    response = client.post(
        f"/s/{created.share_token}/report",
        {"reason": "malware", "note": "Asks for my bank password."},
        HTTP_USER_AGENT=FIREFOX,
    )

    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    report = AbuseReport.objects.get()
    assert (report.share_id, report.reason, report.note) == (
        created.share.pk,
        "malware",
        "Asks for my bank password.",
    )
    assert report.reporter == client_fingerprint("127.0.0.1")
    assert report.is_open
    assert kinds(created.share) == ["created", "reported"]
    assert Share.objects.get().downloads == 0
    assert download(client, created.share_token) == (200, CONTENT)


@pytest.mark.django_db
def test_a_report_with_an_unknown_reason_rerenders_the_form_with_400(client, make_share):
    created = make_share(CONTENT)

    response = client.post(f"/s/{created.share_token}/report", {"reason": "spam", "note": "x"})

    assert response.status_code == 400
    html = response.content.decode()
    assert 'name="reason"' in html
    assert "Select a valid choice" in html
    assert AbuseReport.objects.count() == 0
    assert kinds(created.share) == ["created"]


@pytest.mark.django_db
def test_a_used_up_share_cannot_be_reported(client, make_share):
    created = make_share(CONTENT)
    assert download(client, created.share_token) == (200, CONTENT)
    url = f"/s/{created.share_token}/report"

    assert client.get(url).status_code == 410
    assert client.post(url, {"reason": "illegal"}).status_code == 410
    assert AbuseReport.objects.count() == 0


# --- held for review ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_held_share_answers_a_neutral_410_keeps_its_bytes_and_counts_nothing(
    client, make_share, media_root
):
    created = make_share(CONTENT)
    share_token = created.share_token
    stored = media_root / created.share.storage_name

    assert moderation.share_quarantine(share_id=created.share.pk) is True

    page = client.get(f"/s/{share_token}")
    assert page.status_code == 410
    assert "This link is not available." in page.content.decode()
    assert "review" not in page.content.decode().lower()
    api = client.get(f"/api/v1/shares/{share_token}")
    assert api.status_code == 410
    assert api.json() == {"error": {"code": "gone", "message": "This link is not available."}}
    refused = page_download(client, f"/s/{share_token}")
    assert refused.status_code == 410
    assert not refused.streaming
    api_refused = client.post(f"/api/v1/shares/{share_token}/download")
    assert api_refused.status_code == 410
    share = Share.objects.get()
    assert share.downloads == 0
    assert stored.read_bytes() == CONTENT
    assert ShareEvent.Kind.DOWNLOAD_STARTED not in kinds(share)


@pytest.mark.django_db
def test_a_released_share_works_again(client, make_share):
    created = make_share(CONTENT)
    moderation.share_quarantine(share_id=created.share.pk)

    assert moderation.share_release(share_id=created.share.pk) is True

    assert client.get(f"/s/{created.share_token}").status_code == 200
    assert download(client, created.share_token) == (200, CONTENT)
    assert kinds(created.share) == [
        "created",
        "quarantined",
        "released",
        "opened",
        "download_started",
        "download_completed",
        "purged",
    ]


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_purging_an_expired_share_records_expired_then_file_deleted(client, make_share, media_root):
    with time_machine.travel(NOW, tick=False):
        created = make_share(CONTENT, expires_in=60)
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        assert maintenance.shares_purge().shares == 0
    assert kinds(created.share) == ["created"]

    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        result = maintenance.shares_purge()

    assert result.shares == 1
    assert stored_files(media_root) == []
    expired, purged = created.share.events.exclude(kind=ShareEvent.Kind.CREATED)
    assert (expired.kind, expired.at) == ("expired", NOW + timedelta(seconds=60))
    assert (purged.kind, purged.at) == ("purged", NOW + timedelta(seconds=61))
    assert timeline(client, created.manage_token) == [
        ("created", "Created"),
        ("expired", "Expired"),
        ("purged", "File deleted"),
    ]
    assert client.get(f"/s/{created.share_token}").status_code == 410
