"""The HTML pages: upload, landing, download, manage, revoke."""

import hashlib
import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.shares.models import Share
from apps.shares.services import moderation
from tests.support.shares import page_download, stored_files

pytestmark = pytest.mark.django_db


def assert_secret_page_headers(response) -> None:
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_upload_page_is_a_plain_multipart_form(client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    for field in ("file", "expires_in", "max_downloads", "password", "csrfmiddlewaretoken"):
        assert f'name="{field}"' in html


def test_upload_redirects_303_to_the_manage_page_that_shows_the_link(client, media_root):
    response = client.post(
        "/",
        {
            "file": SimpleUploadedFile("notes.txt", b"some notes"),
            "expires_in": "3600",
            "max_downloads": "2",
            "password": "",
        },
    )

    assert response.status_code == 303
    manage_path = response.headers["Location"]
    assert re.fullmatch(r"/m/[A-Za-z0-9_-]{43}", manage_path)
    share = Share.objects.get()
    assert (share.name, share.size, share.max_downloads) == ("notes.txt", 10, 2)
    assert (media_root / share.storage_name).read_bytes() == b"some notes"

    page = client.get(manage_path)
    assert page.status_code == 200
    assert_secret_page_headers(page)
    html = page.content.decode()
    share_link = re.search(r"http://testserver/s/[A-Za-z0-9_-]{22}", html).group(0)
    assert "Revoke" in html
    assert "active" in html
    assert client.get(share_link.removeprefix("http://testserver")).status_code == 200


def test_upload_form_errors_rerender_the_form_with_400(client):
    response = client.post("/", {"expires_in": "3600", "max_downloads": "0"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose a file to share." in html
    assert "greater than or equal to 1" in html
    assert Share.objects.count() == 0


def test_upload_form_keeps_csrf_protection(media_root):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/", {"file": SimpleUploadedFile("a.txt", b"a"), "max_downloads": 1})

    assert response.status_code == 403
    assert Share.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize("method", ["get", "head"])
def test_opening_the_link_never_counts_as_a_download(client, make_share, method):
    created = make_share(b"preview me", name="photo.jpg")

    for _ in range(5):
        response = getattr(client, method)(f"/s/{created.share_token}")
        assert response.status_code == 200
        assert_secret_page_headers(response)

    assert Share.objects.get().downloads == 0


def test_landing_page_shows_what_the_file_is(client, make_share):
    created = make_share(b"abc", name="photo.jpg", max_downloads=3)

    html = client.get(f"/s/{created.share_token}").content.decode()

    assert "photo.jpg" in html
    assert hashlib.sha256(b"abc").hexdigest() in html
    assert "3 bytes" in html
    assert "Downloads left" in html
    assert '<form method="post">' in html
    assert 'name="password"' not in html


def test_download_streams_an_attachment_then_the_link_answers_410(client, make_share, media_root):
    created = make_share(b"<html><script>alert(1)</script></html>", name="page.html")

    response = page_download(client, f"/s/{created.share_token}")

    assert response.status_code == 200
    assert response.streaming
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert response.headers["Content-Length"] == str(created.share.size)
    assert b"".join(response.streaming_content) == b"<html><script>alert(1)</script></html>"
    # The test client closes the response once its content is read, as a WSGI server does:
    # the bytes of the last download are deleted then.
    assert stored_files(media_root) == []
    assert Share.objects.get().purged_at is not None

    again = page_download(client, f"/s/{created.share_token}")
    assert again.status_code == 410
    assert "already been downloaded" in again.content.decode()
    assert client.get(f"/s/{created.share_token}").status_code == 410


def test_download_form_works_when_the_browser_sends_origin_null(make_share):
    # Under Referrer-Policy: no-referrer a browser posts the form with `Origin: null`;
    # the form is authorized by the token in its URL, not by CSRF.
    created = make_share(b"bytes")
    client = Client(enforce_csrf_checks=True)

    response = page_download(client, f"/s/{created.share_token}", HTTP_ORIGIN="null")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"bytes"


def test_wrong_or_missing_password_shows_a_403_page_and_consumes_nothing(client, make_share):
    created = make_share(b"locked", password="open sesame")
    url = f"/s/{created.share_token}"
    assert 'name="password"' in client.get(url).content.decode()

    missing = client.post(url)
    wrong = client.post(url, {"password": "guess"})

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert "The password is wrong." in wrong.content.decode()
    assert_secret_page_headers(wrong)
    assert Share.objects.get().downloads == 0
    right = page_download(client, url, {"password": "open sesame"})
    assert right.status_code == 200
    assert b"".join(right.streaming_content) == b"locked"


def test_unknown_and_malformed_tokens_get_the_404_page(client):
    assert client.get("/s/" + "A" * 22).status_code == 404
    assert client.get("/s/short").status_code == 404
    assert client.get("/m/" + "A" * 43).status_code == 404
    response = client.post("/s/" + "A" * 22)
    assert response.status_code == 404
    assert "OneTimeShare" in response.content.decode()


def test_revoke_redirects_303_and_the_link_is_gone(client, make_share, media_root):
    created = make_share()

    response = client.post(f"/m/{created.manage_token}/revoke", HTTP_ORIGIN="null")

    assert response.status_code == 303
    assert response.headers["Location"] == f"/m/{created.manage_token}"
    assert stored_files(media_root) == []
    assert client.get(f"/s/{created.share_token}").status_code == 410
    page = client.get(f"/m/{created.manage_token}").content.decode()
    assert "revoked" in page
    assert "Revoke and delete" not in page


def test_manage_page_refreshes_itself_only_while_the_share_is_active(client, make_share):
    created = make_share()
    assert 'http-equiv="refresh"' in client.get(f"/m/{created.manage_token}").content.decode()

    b"".join(page_download(client, f"/s/{created.share_token}").streaming_content)

    html = client.get(f"/m/{created.manage_token}").content.decode()
    assert 'http-equiv="refresh"' not in html
    assert "consumed" in html
    assert "1 of 1" in html


# --- the 410 page says what happened ------------------------------------------------------


def gone(client: Client, share_token: str) -> tuple[str, str]:
    """The 410 page's heading and message, after checking the API says the same words."""
    page = client.get(f"/s/{share_token}")
    api = client.get(f"/api/v1/shares/{share_token}")
    assert page.status_code == api.status_code == 410
    assert api.json()["error"]["code"] == "gone"
    html = page.content.decode()
    heading = re.search(r'<h1 id="error-title">(.*?)</h1>', html).group(1)
    message = re.search(r'<p class="error-message" id="error-message">(.*?)</p>', html).group(1)
    assert unescape(message) == api.json()["error"]["message"]
    # Plain words lead; the status code is a footnote, never the heading.
    assert "410" not in heading and "Gone" not in heading
    return heading, unescape(message)


def test_a_downloaded_share_says_so_and_to_tell_the_sender_if_it_was_not_you(client, make_share):
    created = make_share()
    b"".join(page_download(client, f"/s/{created.share_token}").streaming_content)

    heading, message = gone(client, created.share_token)

    assert heading == "This link no longer works"
    assert message.startswith("This file has already been downloaded, and the link worked only")
    assert "If it wasn't you who downloaded it, tell the sender" in message


def test_a_share_downloaded_as_often_as_allowed_says_how_often(client, make_share):
    created = make_share(max_downloads=2)
    for _ in range(2):
        b"".join(page_download(client, f"/s/{created.share_token}").streaming_content)

    _, message = gone(client, created.share_token)

    assert message.startswith("This file has already been downloaded 2 times")
    assert "tell the sender" in message


def test_an_expired_share_says_it_expired(client, make_share):
    created = make_share(expires_in=60)

    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        _, message = gone(client, created.share_token)

    assert message.startswith("This link has expired")
    assert "downloaded" not in message


def test_a_share_revoked_by_its_sender_says_the_sender_revoked_it(client, make_share):
    created = make_share()
    client.post(f"/m/{created.manage_token}/revoke")

    _, message = gone(client, created.share_token)

    assert message.startswith("The sender revoked this link")


@pytest.mark.parametrize("how", ["removed", "held"])
def test_a_share_the_operators_removed_or_hold_is_just_not_available(client, make_share, how):
    created = make_share()
    if how == "removed":
        moderation.share_remove(share_id=created.share.pk)
    else:
        moderation.share_quarantine(share_id=created.share.pk)

    _, message = gone(client, created.share_token)

    assert "not available" in message or "no longer available" in message
    assert "sender" not in message and "review" not in message.lower()


# --- the landing page ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({}, "This link works once: after this download the file is deleted. "),
        ({"max_downloads": 3}, "Each download that starts uses one of the 3 left. "),
        ({"password": "open sesame"}, "A wrong password uses none: you can try again."),
    ],
)
def test_the_landing_page_says_only_a_started_download_counts(client, make_share, options, hint):
    created = make_share(**options)

    html = client.get(f"/s/{created.share_token}").content.decode()

    text = " ".join(re.search(r'id="download-hint">(.*?)</p>', html, re.S).group(1).split())
    assert hint.strip() in text
    assert "press" not in text
    assert ("wrong password" in text) == bool(options.get("password"))


# --- the manage page ----------------------------------------------------------------------


def test_a_delivered_share_reads_as_delivered_on_the_manage_page(client, make_share):
    created = make_share()
    b"".join(page_download(client, f"/s/{created.share_token}").streaming_content)

    html = client.get(f"/m/{created.manage_token}").content.decode()

    assert '<span class="status status-consumed">delivered</span>' in html
    assert 'class="next-step status-line-consumed"' in html
    assert "Delivered: the file was downloaded once" in html
    assert "used up" not in html


def test_the_manage_page_shows_both_links_whole_and_says_why_to_keep_its_own(client, make_share):
    created = make_share()

    html = client.get(f"/m/{created.manage_token}").content.decode()

    share_link = f"http://testserver/s/{created.share_token}"
    manage_link = f"http://testserver/m/{created.manage_token}"
    # Multi-line fields that wrap: the whole link stays readable on a narrow screen.
    assert f'rows="2" spellcheck="false">{share_link}</textarea>' in html
    assert re.search(rf'<textarea id="manage-link" [^>]*>{manage_link}</textarea>', html)
    assert 'data-copy="manage-link"' in html
    assert "your only way back here" in html
