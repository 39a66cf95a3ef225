"""HeadWithoutBodyMiddleware: a HEAD answer keeps GET's headers and loses its body.

Through real gunicorn in tests/test_head_requests.py; here the cases the site's pages do not
reach by HEAD: a streamed file, and a response without a Content-Length of its own.
"""

from pathlib import Path

from django.http import FileResponse, HttpResponse
from django.test import RequestFactory

from apps.common.middleware import HeadWithoutBodyMiddleware


def test_head_of_a_streamed_file_keeps_its_length_and_closes_the_file(
    tmp_path: Path, django_db_blocker
):
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 5000)
    opened = path.open("rb")
    middleware = HeadWithoutBodyMiddleware(lambda request: FileResponse(opened))

    response = middleware(RequestFactory().head("/file"))

    assert response["Content-Length"] == "5000"
    assert b"".join(response.streaming_content) == b""
    # The server never sends it with sendfile either.
    assert getattr(response, "file_to_stream", None) is None
    # As the server does after sending it; closing a response also ends the request, which
    # looks at the database connection.
    with django_db_blocker.unblock():
        response.close()
    assert opened.closed


def test_head_states_the_length_get_would_have(rf: RequestFactory):
    middleware = HeadWithoutBodyMiddleware(lambda request: HttpResponse(b"twelve bytes"))

    response = middleware(rf.head("/page"))

    assert response["Content-Length"] == "12"
    assert response.content == b""


def test_get_is_left_alone(rf: RequestFactory):
    middleware = HeadWithoutBodyMiddleware(lambda request: HttpResponse(b"twelve bytes"))

    response = middleware(rf.get("/page"))

    assert response.content == b"twelve bytes"
