"""One way to answer an error: a JSON error object under /api/, an HTML page elsewhere."""

import json
import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from .exceptions import ServiceError, Unavailable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The error page's heading, in the reader's language (the API's messages stay English).
TITLES = {
    400: _("Bad request"),
    401: _("Password required"),
    403: _("Forbidden"),
    404: _("Not found"),
    405: _("Method not allowed"),
    410: _("Gone"),
    413: _("Too large"),
    429: _("Too many requests"),
    500: _("Server error"),
    503: _("Unavailable"),
}

# The error code of a status, for an error response made by the framework rather than by us.
CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "invalid",
    410: "gone",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}

# What Django raises when the database cannot be reached (refused, timed out, dropped
# mid-query, shutting down); is_database_outage() tells these from the same classes raised
# by a bug, such as SQLite's "no such table".
DATABASE_OUTAGES = (OperationalError, InterfaceError)
# PostgreSQL error classes that mean the server cannot serve now, not that the query is
# wrong: connection exception, insufficient resources, operator intervention (shutdown,
# cancelled by a timeout), system error.
POSTGRESQL_OUTAGE_CLASSES = {"08", "53", "57", "58"}
# SQLite's primary result codes for the same: busy, locked, I/O error, full, cannot open.
SQLITE_OUTAGE_CODES = {5, 6, 10, 13, 14}
# Seconds a client is asked to wait after a 503 for a database outage.
DATABASE_RETRY_AFTER = 5


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def json_response(body: dict, *, status: int = 200) -> HttpResponse:
    """JSON ending with a newline, as a terminal shows it after `curl`."""
    return HttpResponse(json.dumps(body) + "\n", status=status, content_type="application/json")


def error_response(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    message: str,
    template: str = "common/error.html",
    account_nav: bool = True,
) -> HttpResponse:
    """`{"error": {"code", "message"}}` under /api/, else the error page.

    `account_nav` False leaves out the account links, whose `request.user` reads the
    session from the database: the page for a database outage must render without it.
    """
    if wants_json(request):
        return json_response({"error": {"code": code, "message": str(message)}}, status=status)
    context = {
        "status": status,
        "title": TITLES.get(status, _("Error")),
        "message": message,
        "account_nav": account_nav,
    }
    return render(request, template, context, status=status)


def service_error_response(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    """The response for a service exception: its status, code and message."""
    response = error_response(request, status=exc.status, code=exc.code, message=exc.message)
    if retry_after := getattr(exc, "retry_after", None):
        response.headers["Retry-After"] = str(retry_after)
    return response


def is_database_outage(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot serve now (as opposed to a failing query)."""
    if isinstance(exc, InterfaceError):
        return True  # the connection is closed or unusable
    if not isinstance(exc, OperationalError):
        return False
    driver_error = exc.__cause__
    if driver_error is None:
        return True
    if (sqlite_code := getattr(driver_error, "sqlite_errorcode", None)) is not None:
        return sqlite_code & 0xFF in SQLITE_OUTAGE_CODES
    # psycopg: no SQLSTATE when the client lost or never had the connection.
    sqlstate = getattr(driver_error, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in POSTGRESQL_OUTAGE_CLASSES


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 `unavailable` for a request that needed the database while it is unreachable.

    One WARNING line per request instead of Django's error with a traceback (and a mail to
    the admins, each time): an outage is the operator's to fix once, it is not a bug, and
    readiness already reports it. The page renders without touching the database.
    """
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    logger.warning(
        "Database unavailable, answered 503: %s %s (%s: %s)",
        request.method,
        request.path,
        exc.__class__.__name__,
        first_line,
    )
    response = error_response(
        request,
        status=Unavailable.status,
        code=Unavailable.code,
        message=Unavailable.default_message,
        account_nav=False,
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    # Django logs every 5xx response as an error unless it was logged already.
    response._has_been_logged = True
    return response


def database_error_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """For an exception handler that sees every DATABASE_OUTAGES error (the API's): 503 for
    an outage, and anything else raised on, to be the server error it is."""
    if is_database_outage(exc):
        return database_unavailable_response(request, exc)
    raise exc
