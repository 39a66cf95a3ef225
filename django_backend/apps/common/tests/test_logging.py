import io
import logging

import pytest

from apps.common.logging import redact


def test_redact_removes_tokens_from_every_kind_of_secret_path():
    share, manage = "BP2y98DNLUzxxJe025aNp8", "JYUOl0XeROZqCDq1Gwn0MtMfzlFnOcsoQoKh0oKZFjg"
    line = (
        f"GET /s/{share} 410; POST /m/{manage}/revoke; /api/v1/shares/{share}/download; "
        f'"/api/v1/manage/{manage}"'
    )

    redacted = redact(line)

    assert share not in redacted
    assert manage not in redacted
    assert redacted.count("[redacted]") == 4
    assert redact("/api/v1/shares/report.pdf") == "/api/v1/shares/report.pdf"


@pytest.mark.django_db
def test_a_410_on_a_share_link_is_logged_without_its_token(client, make_share):
    created = make_share()
    b"".join(client.post(f"/s/{created.share_token}").streaming_content)
    handler = logging.getLogger("django").handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        assert client.get(f"/s/{created.share_token}").status_code == 410
    finally:
        handler.setStream(previous)

    logged = stream.getvalue()
    assert "Gone: /s/[redacted]" in logged
    assert created.share_token not in logged
