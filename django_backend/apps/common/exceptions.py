"""The base of every app's exception family, and the errors that belong to no feature.

Each exception carries the HTTP status and the API error code it maps to, so that one
mapping (apps.common.errors) serves the HTML pages and the JSON API alike. Feature apps
subclass ServiceError for their own failures (apps.shares.exceptions).

Messages are translated when the exception is made, into the language active then: the
reader's on a page, English under /api/ (apps.common.middleware.LocaleMiddleware), where
clients match on `code`.
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


class ServiceError(Exception):
    status = 400
    code = "invalid"
    default_message = _("The request is invalid.")

    def __init__(self, message: str | None = None) -> None:
        self.message = str(message or self.default_message)
        super().__init__(self.message)


class InvalidInput(ServiceError):
    """A value is out of range or malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotAuthenticated(ServiceError):
    status = 401
    code = "unauthorized"
    default_message = _("Send an API token: Authorization: Bearer <token>.")


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    default_message = _("You are not allowed to do this.")


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
    default_message = _("Too many requests. Please wait a little and try again.")

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(
            ngettext(
                "Too many requests. Please try again in %(seconds)d second.",
                "Too many requests. Please try again in %(seconds)d seconds.",
                self.retry_after,
            )
            % {"seconds": self.retry_after}
        )


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"
    default_message = _("The service is briefly unavailable. Please try again shortly.")
