"""The shares app's exception family, on the project's ServiceError.

Each exception carries the HTTP status and the API error code it maps to; one mapping
(apps.common.errors, applied by a middleware and the API's handler) answers them all.
"""

from django.utils.translation import gettext_lazy as _

from apps.common.exceptions import InvalidInput, ServiceError, Unavailable


class ShareError(ServiceError):
    """Anything the shares services refuse."""


class InvalidShareOption(InvalidInput, ShareError):
    """A share option is out of range or malformed; `field` names it."""


class PasswordRequired(ShareError):
    status = 401
    code = "password_required"
    default_message = _("This file is protected by a password.")


class WrongPassword(ShareError):
    status = 403
    code = "wrong_password"
    default_message = _("The password is wrong.")


class ShareNotFound(ShareError):
    status = 404
    code = "not_found"
    default_message = _("There is no file at this link.")


class ShareGone(ShareError):
    status = 410
    code = "gone"
    default_message = _("This link has been used up, has expired or was revoked. The file is gone.")


class TooLarge(ShareError):
    status = 413
    code = "too_large"
    default_message = _("The file is too large.")


class StorageUnavailable(Unavailable, ShareError):
    default_message = _("File storage is unavailable. Please try again shortly.")
