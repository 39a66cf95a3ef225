"""The shares app's exception family.

Each exception carries the HTTP status and the API error code it maps to, so that one
mapping serves the HTML pages and the JSON API alike (see apps.common.errors).
"""


class ShareError(Exception):
    status = 400
    code = "invalid"
    default_message = "The request is invalid."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidShareOption(ShareError):
    """An option is out of range or malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class PasswordRequired(ShareError):
    status = 401
    code = "password_required"
    default_message = "This file is protected by a password."


class WrongPassword(ShareError):
    status = 403
    code = "wrong_password"
    default_message = "The password is wrong."


class ShareNotFound(ShareError):
    status = 404
    code = "not_found"
    default_message = "There is no file at this link."


class ShareGone(ShareError):
    status = 410
    code = "gone"
    default_message = "This link has been used up, has expired or was revoked. The file is gone."


class TooLarge(ShareError):
    status = 413
    code = "too_large"
    default_message = "The file is too large."


class StorageUnavailable(ShareError):
    status = 503
    code = "unavailable"
    default_message = "File storage is unavailable. Please try again shortly."


class RateLimited(ShareError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests. Please wait a little and try again."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many requests. Please try again in {self.retry_after} seconds.")


class NotAuthenticated(ShareError):
    status = 401
    code = "unauthorized"
    default_message = "Send an API token: Authorization: Bearer <token>."


class Forbidden(ShareError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to do this."
