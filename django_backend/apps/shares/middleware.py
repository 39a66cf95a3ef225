"""Answer oversized uploads with 413 before anything else reads the body."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, UnreadablePostError

from apps.common.errors import service_error_response
from apps.common.exceptions import ServiceError

from .exceptions import InvalidShareOption
from .uploads import discard_spooled, too_large_error, upload_was_too_large

# Room for the multipart boundaries and the small form fields around the file.
MULTIPART_OVERHEAD = 1024 * 1024


class UploadLimitMiddleware:
    """Enforce MAX_UPLOAD_SIZE on every request body.

    A declared Content-Length beyond the limit is refused without reading a byte. Otherwise
    a multipart body is parsed here, ahead of the CSRF check, so that ShareUploadHandler
    stops it the moment it passes the limit and the answer is a clear 413 (an HTML page or
    the JSON error) rather than a CSRF failure or a missing-file message. Raw PUT bodies are
    limited by the same handler in the view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in {"POST", "PUT", "PATCH"}:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > settings.MAX_UPLOAD_SIZE + MULTIPART_OVERHEAD:
                return service_error_response(request, too_large_error())
            if request.content_type == "multipart/form-data":
                try:
                    request.POST  # noqa: B018 - parse now, through the size-limiting handler
                except ServiceError as exc:  # the spool could not be written
                    discard_spooled(request)
                    return service_error_response(request, exc)
                except UnreadablePostError:
                    # The client hung up mid-body: nobody reads this answer, but it is an
                    # ordinary 400, not a 500 with a traceback.
                    discard_spooled(request)
                    return service_error_response(
                        request,
                        InvalidShareOption("body", "ended before the upload was complete."),
                    )
                if upload_was_too_large(request):
                    return service_error_response(request, too_large_error())
        return self.get_response(request)
