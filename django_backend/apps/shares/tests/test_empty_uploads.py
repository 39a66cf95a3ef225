"""An empty (0-byte) file is refused by every way in, with a message that says so: the
API's multipart and raw uploads (400 `invalid`), the upload page (the form again, 400) and
create_share (a command error). A link to nothing would only puzzle its recipient.
"""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.html import escape

from apps.shares.models import Share
from tests.support.api import assert_api_error
from tests.support.app_server import raw_request
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db


def assert_nothing_kept(media_root, upload_tmp) -> None:
    assert not Share.objects.exists()
    assert stored_files(media_root) == []
    assert stored_files(upload_tmp) == []


def test_api_multipart_with_an_empty_file_answers_400_saying_it_is_empty(
    client: Client, media_root, upload_tmp
):
    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("empty.txt", b"")})

    message = assert_api_error(response, 400, "invalid")
    assert message.startswith("file:")
    assert "empty" in message
    assert_nothing_kept(media_root, upload_tmp)


def test_api_put_with_an_empty_body_answers_400_saying_it_is_empty(
    client: Client, media_root, upload_tmp
):
    response = client.put(
        "/api/v1/shares/empty.txt", data=b"", content_type="application/octet-stream"
    )

    message = assert_api_error(response, 400, "invalid")
    assert "empty" in message
    assert_nothing_kept(media_root, upload_tmp)


def test_chunked_put_with_no_chunk_answers_400_saying_it_is_empty(app_server):
    """`printf '' | curl -T - URL`: a chunked body that is only its last chunk."""
    stored_before = app_server.stored_files()
    head = (
        "PUT /api/v1/shares/empty.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close"
    )

    status, content = raw_request(app_server, head, b"0\r\n\r\n")

    assert status == 400, content
    error = json.loads(content)["error"]
    assert error["code"] == "invalid"
    assert "empty" in error["message"]
    assert app_server.stored_files() == stored_before
    assert app_server.spooled_files() == set()


def test_upload_page_with_an_empty_file_shows_the_form_again_saying_it_is_empty(
    client: Client, media_root, upload_tmp
):
    response = client.post(
        "/",
        {
            "file": SimpleUploadedFile("empty.txt", b""),
            "expires_in": "86400",
            "max_downloads": "1",
            "password": "",
        },
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    [message] = response.context["form"].errors["file"]
    assert "empty" in message
    assert escape(message) in response.content.decode()
    assert_nothing_kept(media_root, upload_tmp)


def test_create_share_with_an_empty_file_is_a_command_error(tmp_path, media_root, upload_tmp):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")

    with pytest.raises(CommandError, match="empty"):
        call_command("create_share", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert_nothing_kept(media_root, upload_tmp)


def test_a_one_byte_file_is_not_empty(client: Client):
    response = client.post("/api/v1/shares", {"file": SimpleUploadedFile("one.txt", b"1")})

    assert response.status_code == 201, response.content
    assert response.json()["size"] == 1
