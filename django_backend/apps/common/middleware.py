from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .errors import error_response, wants_json


class ApiErrorShapeMiddleware:
    """Give the API's framework-made errors the contract's JSON shape.

    django-ninja answers a method it has no operation for (405) by itself, as plain text;
    every API error must be `{"error": {"code", "message"}}`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 405
            and wants_json(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            allowed = response.get("Allow", "")
            response = error_response(
                request,
                status=405,
                code="invalid",
                message=f"{request.method} is not allowed here; use {allowed}.",
            )
            response["Allow"] = allowed
        return response
