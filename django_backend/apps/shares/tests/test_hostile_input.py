"""Hostile file names and invalid options, through every way in: the API's multipart and
PUT uploads and the HTML upload form.

Whatever the sender names the file, it is stored under a random name inside
MEDIA_ROOT/shares/, shown HTML-escaped, and sent back in a Content-Disposition header that
cannot be split, cannot carry a path, and decodes to the cleaned name. No input answers 500:
Django's test client re-raises an unhandled exception, so every request here proves it.
"""

import re
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client
from django.utils.html import escape

from tests.support.api import assert_api_error
from tests.support.shares import page_download, stored_files

pytestmark = pytest.mark.django_db


CONTENT = b"not what the name says\n"
BOUNDARY = "OneTimeShareTestBoundary7MA4YWxkTrZu0gW"
FORM_FIELDS = {"expires_in": "86400", "max_downloads": "1", "password": ""}
TOKEN_IN_PATH = re.compile(r"/([sm])/([A-Za-z0-9_-]{16,64})")

# (what the sender calls the file, the name the service must keep, as a regular expression)
HOSTILE_NAMES = [
    pytest.param("../../etc/passwd", re.escape("passwd"), id="parent-dirs"),
    pytest.param('quo"te;semi.txt', re.escape("quote;semi.txt"), id="quote-semicolon"),
    pytest.param("отчёт 2026.pdf", re.escape("отчёт 2026.pdf"), id="cyrillic"),
    pytest.param("<script>alert(1)</script>.html", re.escape("script>.html"), id="script-tag"),
    pytest.param(
        "<img src=x onerror=alert(1)>.html",
        re.escape("<img src=x onerror=alert(1)>.html"),
        id="img-tag",
    ),
    pytest.param(".htaccess", re.escape(".htaccess"), id="dotfile"),
    # Shortened or not, it must fit the column and keep its extension.
    pytest.param("a" * 296 + ".txt", r"a{1,251}\.txt", id="300-chars"),
    pytest.param(
        "report\r\nSet-Cookie: pwned=1\r\n.txt",
        re.escape("reportSet-Cookie: pwned=1.txt"),
        id="crlf",
    ),
    pytest.param(
        "nul\x00bel\x07esc\x1bdel\x7f.txt", re.escape("nulbelescdel.txt"), id="control-chars"
    ),
    pytest.param("invoice\u202etxt.exe", re.escape("invoicetxt.exe"), id="rtl-override"),
    pytest.param("C:\\Users\\x\\evil.exe", re.escape("evil.exe"), id="windows-path"),
]
PUT_HOSTILE_NAMES = [p for p in HOSTILE_NAMES if "/" not in p.values[0]]
SLASHED_NAMES = [p for p in HOSTILE_NAMES if "/" in p.values[0]]


# --- helpers -----------------------------------------------------------------------------


def multipart(fields: dict[str, str], *, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body whose file part gives its name as RFC 2231 `filename*`, so that the
    server receives the name exactly as written here, control characters and all."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        (
            f"--{BOUNDARY}\r\n"
            f"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''"
            f"{quote(filename, safe='')}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={BOUNDARY}"


def body_of(response: HttpResponseBase) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def upload_by_api_multipart(client: Client, filename: str) -> str:
    body, content_type = multipart({}, filename=filename, content=CONTENT)
    response = client.post("/api/v1/shares", data=body, content_type=content_type)
    assert response.status_code == 201, response.content
    return response.json()["token"]


def upload_by_api_put(client: Client, filename: str) -> str:
    response = client.put(
        "/api/v1/shares/" + quote(filename, safe=""),
        data=CONTENT,
        content_type="application/octet-stream",
    )
    assert response.status_code == 201, response.content
    return response.json()["token"]


def upload_by_html_form(client: Client, filename: str) -> str:
    body, content_type = multipart(FORM_FIELDS, filename=filename, content=CONTENT)
    response = client.post("/", data=body, content_type=content_type)
    assert response.status_code == 303, response.content
    kind, manage_token = TOKEN_IN_PATH.fullmatch(response["Location"]).groups()
    assert kind == "m"
    manage_page = client.get(f"/m/{manage_token}")
    assert manage_page.status_code == 200
    share_tokens = {
        token for kind, token in TOKEN_IN_PATH.findall(manage_page.content.decode()) if kind == "s"
    }
    assert len(share_tokens) == 1
    return share_tokens.pop()


def name_parts(raw_name: str) -> set[str]:
    """The words of a user's file name that must not show up in the stored name.

    Short runs of hex digits are left out: a random hex name contains "2026" by chance.
    """
    words = re.findall(r"\w{3,}", raw_name)
    return {
        word.lower() for word in words if not (len(word) < 8 and re.fullmatch(r"[0-9a-f]+", word))
    }


def assert_stored_safely(media_root: Path, upload_tmp: Path, raw_name: str) -> None:
    """One file, under a random name inside MEDIA_ROOT/shares/, and nothing anywhere else."""
    [stored] = stored_files(media_root)
    shares_dir = (media_root / "shares").resolve()
    assert stored.resolve().is_relative_to(shares_dir)
    stored_name = stored.resolve().relative_to(shares_dir).as_posix().lower()
    for part in name_parts(raw_name):
        assert part not in stored_name, (part, stored_name)
    assert stored.read_bytes() == CONTENT
    # `../../etc/passwd` relative to MEDIA_ROOT/shares would land beside MEDIA_ROOT.
    test_dir = media_root.parent
    outside = [path for path in stored_files(test_dir) if not path.is_relative_to(media_root)]
    assert outside == []
    assert stored_files(upload_tmp) == []


def assert_safe_attachment(response: HttpResponseBase, name: str) -> None:
    """RFC 6266: `attachment`, no header splitting, no path, `filename*` decodes to name."""
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert disposition.split(";", 1)[0].strip() == "attachment"

    encoded = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
    assert encoded, disposition
    decoded = unquote(encoded.group(1), errors="strict")
    assert decoded == name
    assert "/" not in decoded
    assert "\\" not in decoded

    fallback = re.search(r'filename="([^"]*)"', disposition)
    if fallback:
        assert "/" not in fallback.group(1)
        assert "\\" not in fallback.group(1)
        assert disposition.count('"') == 2


def assert_landing_page_escapes(client: Client, share_token: str, name: str) -> None:
    page = client.get(f"/s/{share_token}")
    assert page.status_code == 200
    html = page.content.decode()
    assert escape(name) in html
    if set(name) & set("<>&\"'"):
        assert name not in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html


UPLOADS = {
    "api-multipart": upload_by_api_multipart,
    "api-put": upload_by_api_put,
    "html-form": upload_by_html_form,
}


def check_hostile_upload(
    client: Client,
    media_root: Path,
    upload_tmp: Path,
    *,
    channel: str,
    raw_name: str,
    expected: str,
) -> None:
    share_token = UPLOADS[channel](client, raw_name)

    assert_stored_safely(media_root, upload_tmp, raw_name)

    meta = client.get(f"/api/v1/shares/{share_token}")
    assert meta.status_code == 200
    name = meta.json()["name"]
    assert re.fullmatch(expected, name), name
    assert len(name) <= 255

    assert_landing_page_escapes(client, share_token, name)

    # The HTML form's recipient downloads from the page; API users from the API.
    url = (
        f"/s/{share_token}" if channel == "html-form" else f"/api/v1/shares/{share_token}/download"
    )
    response = page_download(client, url)
    assert response.status_code == 200
    assert_safe_attachment(response, name)
    assert body_of(response) == CONTENT


# --- hostile names -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw_name", "expected"), HOSTILE_NAMES)
def test_hostile_name_by_api_multipart_is_stored_randomly_and_sent_back_clean(
    client, media_root, upload_tmp, raw_name, expected
):
    check_hostile_upload(
        client,
        media_root,
        upload_tmp,
        channel="api-multipart",
        raw_name=raw_name,
        expected=expected,
    )


@pytest.mark.parametrize(("raw_name", "expected"), PUT_HOSTILE_NAMES)
def test_hostile_name_by_api_put_is_stored_randomly_and_sent_back_clean(
    client, media_root, upload_tmp, raw_name, expected
):
    check_hostile_upload(
        client, media_root, upload_tmp, channel="api-put", raw_name=raw_name, expected=expected
    )


@pytest.mark.parametrize(("raw_name", "expected"), HOSTILE_NAMES)
def test_hostile_name_by_html_form_is_stored_randomly_and_sent_back_clean(
    client, media_root, upload_tmp, raw_name, expected
):
    check_hostile_upload(
        client, media_root, upload_tmp, channel="html-form", raw_name=raw_name, expected=expected
    )


@pytest.mark.parametrize(("raw_name", "expected"), SLASHED_NAMES)
def test_put_with_an_encoded_slash_in_the_name_writes_nothing_outside_media_root(
    client, media_root, upload_tmp, raw_name, expected
):
    # The name is one path segment; `%2F` decodes to `/` before routing. Refusing such a
    # URL and storing it under its cleaned name are both safe: neither may escape.
    response = client.put(
        "/api/v1/shares/" + quote(raw_name, safe=""),
        data=CONTENT,
        content_type="application/octet-stream",
    )

    if response.status_code == 201:
        assert_stored_safely(media_root, upload_tmp, raw_name)
        assert re.fullmatch(expected, response.json()["name"])
    else:
        assert_api_error(response, 404, "not_found")
        assert stored_files(media_root.parent) == []


def test_browser_style_utf8_filename_keeps_the_name(client):
    # Browsers send the raw UTF-8 name in `filename="..."`, as Django's test client does.
    response = client.post(
        "/",
        {
            "file": SimpleUploadedFile("отчёт 2026.pdf", CONTENT),
            "expires_in": "86400",
            "max_downloads": "1",
        },
    )

    assert response.status_code == 303
    manage_token = response["Location"].rsplit("/", 1)[-1]
    manage = client.get(f"/api/v1/manage/{manage_token}").json()
    assert manage["name"] == "отчёт 2026.pdf"
    download = page_download(client, f"/s/{manage['token']}")
    assert download.status_code == 200
    assert_safe_attachment(download, "отчёт 2026.pdf")
    assert body_of(download) == CONTENT


def test_same_name_twice_is_stored_under_two_different_random_names(client, media_root):
    upload_by_api_multipart(client, "same.txt")
    upload_by_api_multipart(client, "same.txt")

    stored = stored_files(media_root)
    assert len(stored) == 2
    assert stored[0].name != stored[1].name


@pytest.mark.parametrize(
    "declared_type",
    [
        "text/html",
        "image/svg+xml",
        "application/javascript",
        'text/html"><script>alert(1)</script>',
        "../../etc/passwd",
    ],
)
def test_declared_content_type_never_makes_the_download_renderable(client, declared_type):
    response = client.put(
        "/api/v1/shares/page.bin", data=b"<script>alert(1)</script>", content_type=declared_type
    )
    assert response.status_code == 201, response.content
    share_token = response.json()["token"]

    content_type = client.get(f"/api/v1/shares/{share_token}").json()["content_type"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", content_type)
    page = client.get(f"/s/{share_token}").content.decode()
    assert "<script>alert" not in page
    download = client.post(f"/api/v1/shares/{share_token}/download")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment")
    assert body_of(download) == b"<script>alert(1)</script>"


# --- invalid options ---------------------------------------------------------------------

# (field, value as a function of the settings)
INVALID_OPTIONS = [
    pytest.param("max_downloads", lambda s: "0", id="max_downloads-0"),
    pytest.param("max_downloads", lambda s: "101", id="max_downloads-101"),
    pytest.param("max_downloads", lambda s: "-1", id="max_downloads-negative"),
    pytest.param("max_downloads", lambda s: "two", id="max_downloads-word"),
    pytest.param("max_downloads", lambda s: "9" * 30, id="max_downloads-huge"),
    pytest.param("max_downloads", lambda s: "", id="max_downloads-empty"),
    pytest.param("expires_in", lambda s: str(s.MIN_EXPIRES_IN - 1), id="expires_in-below-min"),
    pytest.param("expires_in", lambda s: str(s.MAX_EXPIRES_IN + 1), id="expires_in-above-max"),
    pytest.param("expires_in", lambda s: "soon", id="expires_in-word"),
    pytest.param("expires_in", lambda s: "9" * 30, id="expires_in-huge"),
    pytest.param("expires_in", lambda s: "", id="expires_in-empty"),
    pytest.param("password", lambda s: "p" * 1025, id="password-too-long"),
]


def assert_nothing_stored(media_root: Path, upload_tmp: Path) -> None:
    assert stored_files(media_root) == []
    assert stored_files(upload_tmp) == []


@pytest.mark.parametrize(("field", "value"), INVALID_OPTIONS)
def test_invalid_option_on_api_multipart_answers_400_naming_the_field(
    client, settings, media_root, upload_tmp, field, value
):
    data = {"file": SimpleUploadedFile("notes.txt", CONTENT), field: value(settings)}

    response = client.post("/api/v1/shares", data)

    message = assert_api_error(response, 400, "invalid")
    assert field in message
    assert_nothing_stored(media_root, upload_tmp)


@pytest.mark.parametrize(("field", "value"), INVALID_OPTIONS)
def test_invalid_option_on_api_put_answers_400_naming_the_field(
    client, settings, media_root, upload_tmp, field, value
):
    query = f"{field}={quote(value(settings))}"

    response = client.put(
        f"/api/v1/shares/notes.txt?{query}",
        data=CONTENT,
        content_type="application/octet-stream",
    )

    message = assert_api_error(response, 400, "invalid")
    assert field in message
    assert_nothing_stored(media_root, upload_tmp)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-file-field"),
        pytest.param({"file": "just a string"}, id="file-as-text-field"),
        pytest.param({"max_downloads": "1"}, id="options-but-no-file"),
    ],
)
def test_api_multipart_without_a_file_answers_400_naming_the_field(
    client, media_root, upload_tmp, data
):
    response = client.post("/api/v1/shares", data)

    message = assert_api_error(response, 400, "invalid")
    assert "file" in message
    assert_nothing_stored(media_root, upload_tmp)


def assert_form_rerendered_with_error(response: HttpResponseBase, field: str) -> None:
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    # The upload form again, with the field's message on it.
    assert 'type="file"' in html
    assert 'name="file"' in html
    assert 'enctype="multipart/form-data"' in html
    errors = response.context["form"].errors
    assert field in errors
    assert 'class="errorlist' in html
    for message in errors[field]:
        assert escape(message) in html


@pytest.mark.parametrize(("field", "value"), INVALID_OPTIONS)
def test_invalid_option_on_html_form_rerenders_the_form_with_400(
    client, settings, media_root, upload_tmp, field, value
):
    data = {
        "file": SimpleUploadedFile("notes.txt", CONTENT),
        "expires_in": "86400",
        "max_downloads": "1",
        "password": "",
    }
    data[field] = value(settings)

    response = client.post("/", data)

    assert_form_rerendered_with_error(response, field)
    assert_nothing_stored(media_root, upload_tmp)


def test_html_form_without_a_file_rerenders_the_form_with_400(client, media_root, upload_tmp):
    response = client.post("/", {"expires_in": "86400", "max_downloads": "1"})

    assert_form_rerendered_with_error(response, "file")
    assert_nothing_stored(media_root, upload_tmp)


# --- hostile bodies ----------------------------------------------------------------------


@pytest.fixture
def share_token(client) -> str:
    return upload_by_api_multipart(client, "notes.txt")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param("{not json", None, id="not-json"),
        pytest.param('{"password": 12345}', "password", id="password-not-a-string"),
    ],
)
def test_bad_json_body_on_download_answers_400_and_consumes_nothing(
    client, share_token, body, field
):
    response = client.post(
        f"/api/v1/shares/{share_token}/download", data=body, content_type="application/json"
    )

    message = assert_api_error(response, 400, "invalid")
    if field:
        assert field in message
    download = client.post(f"/api/v1/shares/{share_token}/download")
    assert download.status_code == 200
    assert body_of(download) == CONTENT


@pytest.mark.parametrize("path", ["/api/v1/shares", "/"])
def test_multipart_without_a_boundary_answers_400(client, media_root, upload_tmp, path):
    response = client.post(path, data=b"--x\r\n\r\n", content_type="multipart/form-data")

    assert response.status_code == 400
    if path.startswith("/api/"):
        assert_api_error(response, 400, "invalid")
    assert_nothing_stored(media_root, upload_tmp)


def test_put_with_an_undecodable_percent_encoded_name_never_stores_control_characters(
    client, media_root, upload_tmp
):
    response = client.put(
        "/api/v1/shares/%FF%FE%0D%0A.txt",
        data=CONTENT,
        content_type="application/octet-stream",
    )

    if response.status_code == 201:
        name = response.json()["name"]
        assert not re.search(r"[\x00-\x1f\x7f/\\]", name)
        [stored] = stored_files(media_root)
        assert stored.resolve().is_relative_to((media_root / "shares").resolve())
    else:
        assert_api_error(response, 400, "invalid")
        assert_nothing_stored(media_root, upload_tmp)


@pytest.mark.parametrize("path", ["/api/v1/shares", "/"])
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({f"field{i}": "x" for i in range(2000)}, id="too-many-fields"),
        pytest.param(
            {f"file{i}": SimpleUploadedFile(f"f{i}.txt", b"x") for i in range(150)},
            id="too-many-files",
        ),
    ],
)
def test_flood_of_form_parts_answers_400(client, media_root, upload_tmp, path, extra):
    data = {"file": SimpleUploadedFile("notes.txt", CONTENT), **FORM_FIELDS, **extra}

    response = client.post(path, data)

    assert response.status_code == 400
    if path.startswith("/api/"):
        assert_api_error(response, 400, "invalid")
    assert_nothing_stored(media_root, upload_tmp)
