"""Assertions on the JSON API's answers, and the fields its share object has."""

import json

from django.http import HttpResponseBase


def assert_api_error(response: HttpResponseBase, status: int, code: str) -> str:
    """The response is `status` with exactly {"error": {"code", "message"}}; its message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message.strip()
    return message


# The share object of POST /api/v1/shares (shared/design.md §4).
SHARE_FIELDS = {
    "token",
    "url",
    "manage_token",
    "manage_url",
    "name",
    "size",
    "sha256",
    "content_type",
    "expires_at",
    "max_downloads",
    "downloads",
    "downloads_remaining",
    "password_required",
    "status",
}
