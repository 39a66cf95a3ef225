"""The OpenAPI document states the rules the server enforces (ranges, lengths, defaults), as
the settings in force when it is generated say them, so that a client generated from it
sends only what the server accepts; and the server accepts exactly what the document
allows, at the edges and one past them. Then the API's other promises to clients: PUT
without a file name says which form works, JSON replies end with a newline, and no
parameter of the shares API, however malformed, makes it answer 500.
"""

import json
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.models import User
from apps.accounts.services import api_token_create
from apps.shares.services.lifecycle import MAX_PASSWORD_LENGTH
from tests.support.api import assert_api_error
from tests.support.shares import stored_files

pytestmark = pytest.mark.django_db

CONTENT = b"bytes for the document's examples\n"


def document(client: Client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def operation(spec: dict, method: str, path: str) -> dict:
    return spec["paths"][path][method]


def multipart_fields(spec: dict) -> dict[str, dict]:
    body = operation(spec, "post", "/api/v1/shares")["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema["properties"]


def query_parameters(spec: dict, method: str, path: str) -> dict[str, dict]:
    return {
        parameter["name"]: parameter["schema"]
        for parameter in operation(spec, method, path)["parameters"]
        if parameter["in"] == "query"
    }


@pytest.fixture
def narrow_settings(settings):
    """Rules unlike the defaults: the document must follow the settings, not a copy."""
    settings.MIN_EXPIRES_IN = 120
    settings.DEFAULT_EXPIRES_IN = 600
    settings.MAX_EXPIRES_IN = 3600
    settings.MAX_DOWNLOADS_LIMIT = 7
    settings.MAX_UPLOAD_SIZE = 4096
    return settings


def upload_options_of(spec: dict) -> dict[str, dict[str, dict]]:
    """Each upload operation's options, by name, as the document states them."""
    return {
        "multipart": multipart_fields(spec),
        "put": query_parameters(spec, "put", "/api/v1/shares/{key}"),
    }


@pytest.mark.parametrize("how", ["multipart", "put"])
def test_document_states_the_option_ranges_of_the_settings_in_force(client, narrow_settings, how):
    options = upload_options_of(document(client))[how]

    expires_in = options["expires_in"]
    assert (expires_in["minimum"], expires_in["maximum"]) == (120, 3600)
    assert expires_in["default"] == 600
    assert expires_in["type"] == "integer"
    max_downloads = options["max_downloads"]
    assert (max_downloads["minimum"], max_downloads["maximum"]) == (1, 7)
    assert max_downloads["default"] == 1
    assert options["password"]["maxLength"] == MAX_PASSWORD_LENGTH


def test_document_follows_the_settings_from_one_request_to_the_next(client, settings):
    before = upload_options_of(document(client))["put"]["expires_in"]["maximum"]
    settings.MAX_EXPIRES_IN = before + 1000

    after = upload_options_of(document(client))["put"]["expires_in"]["maximum"]

    assert after == before + 1000


def test_document_states_the_upload_size_limit_and_that_a_file_is_not_empty(
    client, narrow_settings
):
    spec = document(client)

    file_field = multipart_fields(spec)["file"]
    put_body = operation(spec, "put", "/api/v1/shares/{key}")["requestBody"]
    for description in (file_field["description"], put_body["description"]):
        assert "4096 bytes" in description
        assert "empty" in description


def test_document_states_the_page_size_range_of_the_list(client):
    limit = query_parameters(document(client), "get", "/api/v1/shares")["limit"]

    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)


# --- the server keeps to the document, at the edges and one past them --------------------


def edge_values(schema: dict) -> tuple[list[str], list[str]]:
    """Values the document allows (its bounds), and values one past them."""
    if schema["type"] == "integer":
        low, high = schema["minimum"], schema["maximum"]
        return [str(low), str(high)], [str(low - 1), str(high + 1)]
    return ["", "p" * schema["maxLength"]], ["p" * (schema["maxLength"] + 1)]


def upload(client: Client, how: str, field: str, value: str):
    if how == "multipart":
        data = {"file": SimpleUploadedFile("edge.txt", CONTENT), field: value}
        return client.post("/api/v1/shares", data)
    return client.put(
        f"/api/v1/shares/edge.txt?{field}={quote(value)}",
        data=CONTENT,
        content_type="application/octet-stream",
    )


@pytest.mark.parametrize("how", ["multipart", "put"])
@pytest.mark.parametrize("field", ["expires_in", "max_downloads", "password"])
def test_server_accepts_the_documented_bounds_and_refuses_one_past_them(
    client, narrow_settings, how, field
):
    schema = upload_options_of(document(client))[how][field]
    allowed, refused = edge_values(schema)

    for value in allowed:
        response = upload(client, how, field, value)
        assert response.status_code == 201, (value[:20], response.content)
    for value in refused:
        message = assert_api_error(upload(client, how, field, value), 400, "invalid")
        assert field in message


# --- PUT without a file name --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/shares", "/api/v1/shares/"])
def test_put_without_a_file_name_shows_the_form_that_works(client, path, media_root):
    response = client.put(path, data=CONTENT, content_type="application/octet-stream")

    message = assert_api_error(response, 405, "invalid")
    assert "PUT /api/v1/shares/<filename>" in message
    assert "curl -T report.pdf http://testserver/api/v1/shares/" in message
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert stored_files(media_root) == []


def test_put_without_a_file_name_names_the_site_url_when_set(client, settings):
    settings.SITE_URL = "https://share.example.com"

    response = client.put("/api/v1/shares", data=CONTENT, content_type="text/plain")

    message = assert_api_error(response, 405, "invalid")
    assert "curl -T report.pdf https://share.example.com/api/v1/shares/" in message


# --- JSON replies end with a newline (a shell prompt after `curl` starts on its own line) --


@pytest.fixture
def bearer() -> dict[str, str]:
    user = User.objects.create_user("alice", password="a long and unusual passphrase 42")
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='s').key}"}


def test_json_success_replies_end_with_a_newline(client, bearer):
    created = client.post(
        "/api/v1/shares", {"file": SimpleUploadedFile("n.txt", CONTENT)}, **bearer
    )
    put = client.put("/api/v1/shares/n.txt", data=CONTENT, content_type="text/plain")
    share = created.json()
    replies = {
        "create": created,
        "put": put,
        "metadata": client.get(f"/api/v1/shares/{share['token']}"),
        "manage": client.get(f"/api/v1/manage/{share['manage_token']}"),
        "list": client.get("/api/v1/shares", **bearer),
    }

    for name, response in replies.items():
        assert response.status_code in {200, 201}, (name, response.content)
        assert response["Content-Type"].startswith("application/json"), name
        assert response.content.endswith(b"}\n"), name
        json.loads(response.content)


# --- a small fuzz of the shares API's parameters, driven by the document -----------------

HOSTILE_VALUES = {
    "integer": ["NaN", "-Infinity", "1e309", "-1", "0", "9" * 5000, "0x10", "", "%00", "½"],
    "string": ["", "\x00", "%FF%FE", "\u202e", "../" * 50, "x" * 20_000, "null", "[]"],
}


def fuzz_cases(spec: dict) -> list[tuple[str, str, str, str, str]]:
    """(method, path, where, name, value) for every query and path parameter of the shares
    and manage operations, each with every hostile value of its type."""
    cases = []
    for path, methods in spec["paths"].items():
        if not path.startswith(("/api/v1/shares", "/api/v1/manage")):
            continue
        for method, spec_operation in methods.items():
            for parameter in spec_operation.get("parameters", []):
                schema = parameter["schema"]
                kind = schema.get("type") or next(
                    option["type"] for option in schema["anyOf"] if option["type"] != "null"
                )
                for value in HOSTILE_VALUES[kind]:
                    cases.append((method, path, parameter["in"], parameter["name"], value))
    return cases


def test_no_parameter_of_the_shares_api_makes_it_answer_500(client, bearer, media_root):
    """Every response is a success or the contract's JSON error; a 500 would be re-raised by
    the test client and fail here."""
    share = client.post("/api/v1/shares", {"file": SimpleUploadedFile("f.txt", CONTENT)}).json()
    defaults = {"key": share["token"], "token": share["token"], "manage_token": "x" * 43}
    cases = fuzz_cases(document(client))
    assert len(cases) > 50

    for method, path, where, name, value in cases:
        url = path
        for placeholder, default in defaults.items():
            replacement = (
                quote(value, safe="") if where == "path" and placeholder == name else default
            )
            url = url.replace("{" + placeholder + "}", replacement)
        query = f"?{name}={quote(value, safe='')}" if where == "query" else ""
        response = client.generic(
            method.upper(), url + query, data=CONTENT, content_type="text/plain", **bearer
        )
        if response.status_code >= 400:
            assert_api_error(response, response.status_code, response.json()["error"]["code"])
