from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


def secret_url(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For pages whose URL carries a secret: never cached, never sent as a Referer."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Templates learn that a session form on this page would be posted with
        # `Origin: null` (and fail its CSRF check): they link to a page that has one.
        request.no_referrer = True
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapper
