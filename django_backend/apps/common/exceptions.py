"""The base of every app's exception family, and the errors that belong to no feature.

Each exception carries the HTTP status and the API error code it maps to, so that one
mapping (apps.common.errors) serves the HTML pages and the JSON API alike. Feature apps
subclass ServiceError for their own failures (apps.shares.exceptions).
"""


class ServiceError(Exception):
    status = 400
    code = "invalid"
    default_message = "The request is invalid."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidInput(ServiceError):
    """A value is out of range or malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotAuthenticated(ServiceError):
    status = 401
    code = "unauthorized"
    default_message = "Send an API token: Authorization: Bearer <token>."


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to do this."


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests. Please wait a little and try again."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many requests. Please try again in {self.retry_after} seconds.")


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"
    default_message = "The service is briefly unavailable. Please try again shortly."
