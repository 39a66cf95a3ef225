"""The uploads app's exception family, on the project's ServiceError.

Statuses the tus protocol prescribes and the JSON API did not use before get codes of their
own: 409 `conflict`, 412 `unsupported_version`, 415 `unsupported_media_type`, 460
`checksum_mismatch` (docs/uploads.md lists them).
"""

from apps.common.exceptions import InvalidInput, ServiceError


class UploadError(ServiceError):
    """Anything the uploads services refuse."""


class InvalidUploadHeader(InvalidInput, UploadError):
    """A tus header is missing or malformed; `field` names it."""


class UploadNotFound(UploadError):
    status = 404
    code = "not_found"
    default_message = "There is no upload at this address."


class UploadGone(UploadError):
    status = 410
    code = "gone"
    default_message = (
        "This upload has expired or was removed and cannot be resumed. Start a new upload."
    )


class UploadConflict(UploadError):
    status = 409
    code = "conflict"
    default_message = "The upload is not at this offset. Ask for its offset (HEAD) and resume."


class UnsupportedVersion(UploadError):
    status = 412
    code = "unsupported_version"
    default_message = "This server speaks tus 1.0.0: send Tus-Resumable: 1.0.0."


class UnsupportedMediaType(UploadError):
    status = 415
    code = "unsupported_media_type"
    default_message = "Send the bytes with Content-Type: application/offset+octet-stream."


class ChecksumMismatch(UploadError):
    status = 460
    code = "checksum_mismatch"
    default_message = (
        "The bytes received do not match Upload-Checksum; they were discarded. Send them again."
    )


class UploadBytesLost(UploadGone):
    """The staged bytes are not where the database says (deleted behind our back, a disk
    that lost writes): the upload cannot go on."""

    default_message = "The bytes of this upload were lost. Start a new upload."
