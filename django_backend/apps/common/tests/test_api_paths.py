"""Under /api/ every error is the JSON error object, debug on or off.

With DEBUG on, Django answers an unknown path with its HTML page listing every URL (bypassing
handler404) and a bad Host with its HTML debug page; the API's clients must see neither.
/api/v1 itself says where the API is described.
"""

import json

import pytest

UNKNOWN_API_PATHS = [
    "/api/v1/nothing",
    "/api/v1/nothing/",
    "/api/v1/shares/",  # a real path with a trailing slash
    "/api/v1/manage/",
    "/api/v2/shares",
    "/api/",
]


@pytest.fixture(params=[False, True], ids=["debug off", "debug on"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.content.endswith(b"}\n"), "a JSON reply ends with a newline"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"].strip()
    return body


@pytest.mark.parametrize("path", UNKNOWN_API_PATHS)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_the_json_404(client, debug, path, method):
    response = getattr(client, method)(path)

    assert_json_error(response, 404, "not_found")


def test_the_404_of_an_unknown_api_path_points_at_the_docs(client, debug):
    body = assert_json_error(client.get("/api/v1/nothing"), 404, "not_found")

    assert "/api/v1/docs" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/"])
def test_the_api_root_points_at_its_description(client, debug, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content.endswith(b"}\n")
    body = json.loads(response.content)
    assert body["openapi"] == "http://testserver/api/v1/openapi.json"
    assert body["docs"] == "http://testserver/api/v1/docs"
    # Where it points, there is the document.
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert "paths" in document.json()


def test_the_api_root_refuses_other_methods_in_the_json_shape(client, debug):
    response = client.post("/api/v1/")

    assert_json_error(response, 405, "invalid")
    assert "GET" in response["Allow"]


def test_a_bad_host_under_api_is_a_json_400_with_debug_on_too(client, debug):
    response = client.get("/api/v1/nothing", headers={"Host": "evil.example"})

    assert_json_error(response, 400, "invalid")


def test_an_unknown_page_outside_the_api_stays_the_html_404(client, settings):
    settings.DEBUG = False

    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
