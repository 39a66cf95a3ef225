"""One way to answer an error: a JSON error object under /api/, an HTML page elsewhere."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from .exceptions import ServiceError

API_PREFIX = "/api/"

TITLES = {
    400: "Bad request",
    401: "Password required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    410: "Gone",
    413: "Too large",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    message: str,
    template: str = "common/error.html",
) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"error": {"code": code, "message": message}}, status=status)
    context = {"status": status, "title": TITLES.get(status, "Error"), "message": message}
    return render(request, template, context, status=status)


def service_error_response(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    """The response for a service exception: its status, code and message."""
    response = error_response(request, status=exc.status, code=exc.code, message=exc.message)
    if retry_after := getattr(exc, "retry_after", None):
        response.headers["Retry-After"] = str(retry_after)
    return response
