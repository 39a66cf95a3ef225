import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.encoding import escape_uri_path
from django.utils.http import url_has_allowed_host_and_scheme
from log_request_id.middleware import RequestIDMiddleware as BaseRequestIDMiddleware

from .errors import (
    CODES,
    TITLES,
    database_unavailable_response,
    error_response,
    is_database_outage,
    service_error_response,
    wants_json,
)
from .exceptions import ServiceError

WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


class RequestIDMiddleware(BaseRequestIDMiddleware):
    """django-log-request-id, taking an incoming X-Request-ID only when it is well formed:
    the id goes into every log line, where a forged one could fake key=value pairs."""

    def _get_request_id(self, request: HttpRequest) -> str:
        incoming = request.META.get(settings.LOG_REQUEST_ID_HEADER, "")
        if WELL_FORMED_REQUEST_ID.fullmatch(incoming):
            return incoming
        return self._generate_id()


class ApiErrorShapeMiddleware:
    """Give the API's framework-made errors the contract's JSON shape.

    Every error under /api/ must be `{"error": {"code", "message"}}`, debug on or off; what
    the framework answers by itself is not: django-ninja's 405 for a method it has no
    operation for (plain text), Django's debug pages (a 404 listing every URL, a 500
    traceback), ninja's traceback in debug. Any error response there that is not JSON is
    replaced by the error object for its status.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not wants_json(request)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status = response.status_code
        if status == 405:
            allowed = response.get("Allow", "")
            message = f"{request.method} is not allowed here; use {allowed}."
        elif status == 404:
            message = "There is nothing at this address. The API is described at /api/v1/docs."
        else:
            message = f"{TITLES.get(status, 'Error')}."
        replacement = error_response(
            request,
            status=status,
            code=CODES.get(status, "server_error" if status >= 500 else "invalid"),
            message=message,
        )
        for header in ("Allow", "Retry-After"):
            if header in response:
                replacement[header] = response[header]
        # Not response.close(): that would signal the end of the request (closing its
        # database connection) while it still runs; an error page holds no file to close.
        return replacement


class ServiceErrorMiddleware:
    """Answer a service exception raised by any view with the project's error response,
    and a database that cannot be reached with 503 `unavailable`.

    The one mapping from exception to response for the HTML pages, as the API's exception
    handler is for JSON: views catch only what they handle differently (a form shown again
    with its message). A database outage raised outside a view (a middleware saving the
    session) reaches handler500 instead, which maps it the same way.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ServiceError):
            return service_error_response(request, exception)
        if is_database_outage(exception):
            return database_unavailable_response(request, exception)
        return None


class HeadWithoutBodyMiddleware:
    """Answer HEAD with the headers GET would send, and no body.

    Django leaves stripping the body to the server; gunicorn drops it but logs a warning
    for every such response, and link-preview bots send HEAD all day. Outermost in
    MIDDLEWARE, so that it sees the final response and its final Content-Length.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method != "HEAD":
            return response
        if response.streaming:
            # The file stays open until the server closes the response, as for GET; its
            # Content-Length (set by FileResponse) is kept.
            response.streaming_content = []
        else:
            if not response.has_header("Content-Length"):
                response.headers["Content-Length"] = str(len(response.content))
            response.content = b""
        return response


# `?lang=de` on any page: the language switcher of the pages it cannot post a form from.
LANGUAGE_PARAMETER = "lang"


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's LocaleMiddleware (the language cookie, else Accept-Language), and three more
    things.

    - Under /api/ the language is always LANGUAGE_CODE: API messages stay English, whatever
      the client's Accept-Language, and carry no Content-Language or Vary for it.
    - `GET <page>?lang=xx` stores xx in the language cookie and sends the browser back to the
      same address without the parameter. This is the switcher on the share pages: their
      no-referrer policy makes a browser post forms from them with `Origin: null`, which
      fails the CSRF check of Django's set_language (design.md §3). A language cookie is a
      preference, not an action worth forging. There is no `next` to follow: the redirect
      is to the path just asked for, so it cannot lead elsewhere.
    - After the response the thread's language goes back to LANGUAGE_CODE, so that whatever
      a later request renders before it reaches this middleware is not in another reader's
      language.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if wants_json(request):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = translation.get_language()
            return None
        super().process_request(request)
        if request.method == "GET" and LANGUAGE_PARAMETER in request.GET:
            return self._switch_language(request, request.GET[LANGUAGE_PARAMETER])
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            if wants_json(request):
                return response
            return super().process_response(request, response)
        finally:
            translation.deactivate()

    def _switch_language(self, request: HttpRequest, language: str) -> HttpResponse:
        query = request.GET.copy()
        del query[LANGUAGE_PARAMETER]
        target = escape_uri_path(request.path)
        if query:
            target += "?" + query.urlencode()
        # A path such as //example.com would be read by the browser as another host.
        if not url_has_allowed_host_and_scheme(target, allowed_hosts=set()):
            target = "/"
        response = HttpResponseRedirect(target)
        response.status_code = 303
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        # The address may carry a share's secret: neither cached nor sent on as a Referer.
        add_never_cache_headers(response)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
