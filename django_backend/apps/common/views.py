"""Health checks, the project's error pages, and the API's index and unknown paths."""

import logging
import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .errors import (
    database_unavailable_response,
    error_response,
    is_database_outage,
    json_response,
)
from .health import run_checks

logger = logging.getLogger(__name__)


@require_safe
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: answers whenever the process serves, touching no dependency."""
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every critical dependency answers, else 503 naming the failure."""
    results = run_checks()
    for name, result in results.items():
        if not result["ok"]:
            logger.warning("Readiness check %s failed: %s", name, result.get("error"))
    healthy = all(r["ok"] for r in results.values() if r["critical"])
    body = {"status": "ok" if healthy else "fail", "checks": results}
    response = JsonResponse(body, status=200 if healthy else 503)
    # The failed checks are logged above as warnings; Django would add an error line (and a
    # mail to the admins) for every probe while a dependency is down.
    response._has_been_logged = True
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=400, code="invalid", message=gettext("The request could not be understood.")
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=403, code="forbidden", message=gettext("You are not allowed to do this.")
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(
        request, status=404, code="not_found", message=gettext("There is nothing at this address.")
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A database outage that a middleware ran into (sessions saving, say) comes
    here rather than through ServiceErrorMiddleware: it is a 503 all the same."""
    exception = sys.exc_info()[1]
    if is_database_outage(exception):
        return database_unavailable_response(request, exception)
    return error_response(
        request,
        status=500,
        code="server_error",
        message=gettext("Something went wrong on our side."),
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_response(
        request,
        status=403,
        code="forbidden",
        message=gettext(
            "The form had expired or came from another site. Please reload the page and try again."
        ),
    )


@require_safe
def api_index(request: HttpRequest) -> HttpResponse:
    """/api/v1 and /api/v1/: where the API is described."""
    return json_response(
        {
            "name": "OneTimeShare API",
            "version": "1",
            "openapi": request.build_absolute_uri("/api/v1/openapi.json"),
            "docs": request.build_absolute_uri("/api/v1/docs"),
        }
    )


@csrf_exempt  # it does nothing: an unknown path is a 404, whatever the method
def api_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Every other path under /api/: the JSON 404, also with debug on, where Django would
    answer its HTML page listing every URL."""
    return error_response(
        request,
        status=404,
        code="not_found",
        message="There is nothing at this address. The API is described at /api/v1/docs.",
    )
