"""Download sessions: the window a claim opens to fetch (and resume) the one download.

Through the test client and the real services, database and files on disk; the real
server's side (sendfile, a client cut off, `curl -C -`) is in test_served_downloads.
"""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from apps.shares.models import DownloadSession, Share
from apps.shares.services import maintenance
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 4  # 1,024 bytes, each position recognisable


def claim(client: Client, share_token: str) -> str:
    """Press Download; the session URL it redirects to."""
    response = client.post(f"/s/{share_token}")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/d/")
    assert "no-referrer" in response.headers["Referrer-Policy"]
    return location


def fetch(client: Client, url: str, **headers: str):
    """GET with HTTP headers given as Range="...", If_Range="..."; (response, body)."""
    extra = {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    response = client.get(url, **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def kinds(share: Share) -> list[str]:
    return list(share.events.values_list("kind", flat=True))


def test_the_download_button_redirects_to_a_session_that_serves_the_file(client, make_share):
    created = make_share(CONTENT, name="data.bin")
    session_url = claim(client, created.share_token)

    response, body = fetch(client, session_url)

    assert response.status_code == 200
    assert body == CONTENT
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == f'"{created.share.sha256}"'
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response.headers["Cache-Control"]


def test_a_file_served_in_full_is_delivered_then_deleted_and_the_session_ends(
    client, make_share, media_root
):
    created = make_share(CONTENT)
    session_url = claim(client, created.share_token)

    fetch(client, session_url)

    share = Share.objects.get()
    assert kinds(share)[-3:] == ["download_started", "download_completed", "purged"]
    assert stored_files(media_root) == []
    again, _ = fetch(client, session_url)
    assert again.status_code == 410
    assert client.post(f"/s/{created.share_token}").status_code == 410


def test_ranges_resume_a_download_and_it_completes_when_every_byte_was_served(
    client, make_share, media_root
):
    created = make_share(CONTENT)
    session_url = claim(client, created.share_token)

    first, head = fetch(client, session_url, Range="bytes=0-99")
    assert first.status_code == 206
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(CONTENT)}"
    assert head == CONTENT[:100]
    assert Share.objects.get().purged_at is None  # not every byte yet

    rest, tail = fetch(client, session_url, Range="bytes=100-", If_Range=first.headers["ETag"])

    assert rest.status_code == 206
    assert head + tail == CONTENT
    assert "download_completed" in kinds(Share.objects.get())
    assert stored_files(media_root) == []


def test_a_suffix_range_serves_the_last_bytes(client, make_share):
    session_url = claim(client, make_share(CONTENT).share_token)

    response, body = fetch(client, session_url, Range="bytes=-24")

    assert response.status_code == 206
    assert body == CONTENT[-24:]
    assert response.headers["Content-Range"] == f"bytes 1000-1023/{len(CONTENT)}"


@pytest.mark.parametrize(
    "if_range",
    ['"0000000000000000000000000000000000000000000000000000000000000000"', 'W/"weak"', "x"],
)
def test_an_if_range_that_does_not_match_gets_the_whole_file(client, make_share, if_range):
    session_url = claim(client, make_share(CONTENT).share_token)

    response, body = fetch(client, session_url, Range="bytes=10-", If_Range=if_range)

    assert response.status_code == 200
    assert body == CONTENT


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=-"])
def test_a_range_this_service_does_not_serve_gets_the_whole_file(client, make_share, header):
    session_url = claim(client, make_share(CONTENT).share_token)

    response, body = fetch(client, session_url, Range=header)

    assert response.status_code == 200
    assert body == CONTENT


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0", "bytes=9-3"])
def test_an_unsatisfiable_range_is_416_and_costs_nothing(client, make_share, header):
    session_url = claim(client, make_share(CONTENT).share_token)

    response, _ = fetch(client, session_url, Range=header)

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert DownloadSession.objects.get().bytes_served == 0


def test_head_of_a_session_sends_headers_and_reserves_nothing(client, make_share):
    session_url = claim(client, make_share(CONTENT).share_token)

    response = client.head(session_url, HTTP_RANGE="bytes=0-9")

    assert response.status_code == 206
    assert response.headers["Content-Length"] == "10"
    assert response.content == b""
    session = DownloadSession.objects.get()
    assert (session.bytes_served, session.served_ranges, session.open_requests) == (0, [], {})


def test_head_of_a_session_has_the_type_of_its_get(client, make_share):
    session_url = claim(client, make_share(CONTENT).share_token)

    head = client.head(session_url)
    get, _ = fetch(client, session_url)

    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Type"] == "application/octet-stream"


def test_a_session_serves_about_twice_the_file_then_answers_410(client, make_share, media_root):
    session_url = claim(client, make_share(CONTENT).share_token)
    almost = f"bytes=0-{len(CONTENT) - 2}"  # never the last byte: never complete

    assert fetch(client, session_url, Range=almost)[0].status_code == 206
    assert fetch(client, session_url, Range=almost)[0].status_code == 206
    assert fetch(client, session_url, Range="bytes=0-1")[0].status_code == 206
    used_up, _ = fetch(client, session_url, Range="bytes=0-9")

    assert used_up.status_code == 410
    assert "allowance" in used_up.content.decode()
    assert DownloadSession.objects.get().bytes_served == 2 * len(CONTENT)
    assert len(stored_files(media_root)) == 1  # kept until the window closes


def test_only_a_few_requests_of_a_session_run_at_once(client, make_share, settings):
    settings.DOWNLOAD_SESSION_MAX_REQUESTS = 2
    session_url = claim(client, make_share(CONTENT).share_token)
    open_ones = [client.get(session_url, HTTP_RANGE=f"bytes={i}-{i}") for i in range(2)]

    refused = client.get(session_url, HTTP_RANGE="bytes=5-5")

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    for response in open_ones:
        assert b"".join(response.streaming_content) in (CONTENT[0:1], CONTENT[1:2])
    assert fetch(client, session_url, Range="bytes=5-5")[0].status_code == 206


def test_when_the_window_closes_first_the_timeline_says_so_and_the_bytes_go(
    client, make_share, settings, media_root
):
    settings.DOWNLOAD_SESSION_TTL = 600
    created = make_share(CONTENT)
    session_url = claim(client, created.share_token)
    fetch(client, session_url, Range="bytes=0-9")

    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        late, _ = fetch(client, session_url, Range="bytes=10-")
        maintenance.shares_purge()

    assert late.status_code == 410
    share = Share.objects.get()
    assert kinds(share)[-2:] == ["download_window_closed", "purged"]
    assert "download_completed" not in kinds(share)
    assert stored_files(media_root) == []


def test_revoking_ends_the_session_at_once(client, make_share, media_root):
    created = make_share(CONTENT, max_downloads=2)
    session_url = claim(client, created.share_token)

    client.post(f"/m/{created.manage_token}/revoke")

    response, _ = fetch(client, session_url)
    assert response.status_code == 410
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)  # closing a response outside a request closes
def test_the_api_download_names_its_session_for_a_resume(client, make_share):  # connections
    created = make_share(CONTENT)
    response = client.post(f"/api/v1/shares/{created.share_token}/download")
    session_url = response.headers["Content-Location"]
    response.close()  # broken off before a byte was read

    assert session_url.startswith("http://testserver/d/")
    resumed, body = fetch(client, session_url.removeprefix("http://testserver"), Range="bytes=0-")
    assert resumed.status_code == 206
    assert body == CONTENT
    assert "download_completed" in kinds(Share.objects.get())


def test_an_unknown_session_is_404_and_its_token_is_stored_hashed_only(client, make_share):
    session_url = claim(client, make_share(CONTENT).share_token)
    token = session_url.removeprefix("/d/")

    assert client.get("/d/" + "A" * 43).status_code == 404
    session = DownloadSession.objects.get()
    assert token not in str(DownloadSession.objects.values().get())
    assert len(session.token_hash) == 64
