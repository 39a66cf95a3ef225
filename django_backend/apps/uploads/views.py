"""The tus 1.0.0 endpoints: /api/v1/uploads/ (OPTIONS, POST) and /api/v1/uploads/<id>
(HEAD, PATCH, DELETE, OPTIONS, and GET for the share's links). docs/uploads.md describes
them for clients.

Plain Django views rather than django-ninja operations: tus is headers, raw bodies and
statuses (412, 415, 460) that an OpenAPI framework has no words for. Errors still leave in
the API's JSON shape, and every answer carries Tus-Resumable and Cache-Control: no-store.
"""

import json
from collections.abc import Callable, Iterator
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from ninja.responses import NinjaJSONEncoder

from apps.accounts.auth import request_user
from apps.common import ratelimits
from apps.common.errors import (
    DATABASE_OUTAGES,
    database_unavailable_response,
    error_response,
    is_database_outage,
    service_error_response,
)
from apps.common.exceptions import NotAuthenticated, ServiceError
from apps.shares.clients import actor_from_request
from apps.shares.exceptions import TooLarge
from apps.shares.links import absolute_url
from apps.shares.schemas import ShareOut, share_out

from . import protocol, services
from .exceptions import InvalidUploadHeader, UnsupportedVersion
from .models import Upload

# 1 MiB, gunicorn's largest recv(): 256 KiB reads made gunicorn copy its read-ahead over
# and over (see apps.shares.uploads.RAW_CHUNK_SIZE); a PATCH that breaks off loses at most
# the piece being read, which the client sends again.
READ_CHUNK = 1024 * 1024
# Headers of the answer to the PATCH (or POST) that completes an upload: the share's links.
SHARE_URL_HEADER = "OneTimeShare-Share-Url"
MANAGE_URL_HEADER = "OneTimeShare-Manage-Url"


def tus_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """CSRF-exempt (token and anonymous clients; a session client is checked by
    request_user), errors as the API's JSON, and the headers every tus answer carries.

    Service errors are turned into responses here rather than by the common middleware
    because the answer must carry Tus-Resumable (and Tus-Version for a 412) too.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except ServiceError as exc:
            response = service_error_response(request, exc)
            if exc.status == 460:
                response.reason_phrase = "Checksum Mismatch"
            if isinstance(exc, UnsupportedVersion):
                response["Tus-Version"] = protocol.TUS_VERSION
        except DATABASE_OUTAGES as exc:
            if not is_database_outage(exc):
                raise
            response = database_unavailable_response(request, exc)
        response["Tus-Resumable"] = protocol.TUS_VERSION
        response["Cache-Control"] = "no-store"
        return response

    return wrapper


def _method(request: HttpRequest) -> str:
    # For clients that cannot send PATCH or DELETE: honoured on POST only, so that a GET
    # (a link, a prefetch) never changes anything.
    override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    if request.method == "POST" and override:
        return override
    return request.method


@tus_endpoint
def uploads(request: HttpRequest) -> HttpResponse:
    """/api/v1/uploads/: OPTIONS (what the server supports), POST (create an upload)."""
    method = _method(request)
    if method == "OPTIONS":
        return _options()
    if method == "POST":
        return _create(request)
    return _not_allowed(request, "OPTIONS, POST")


@tus_endpoint
def upload(request: HttpRequest, upload_id: str) -> HttpResponse:
    """/api/v1/uploads/<id>: HEAD (offset), PATCH (bytes), DELETE (terminate), GET (JSON
    status, and the share's links once completed), OPTIONS."""
    method = _method(request)
    if method == "OPTIONS":
        return _options()
    if method == "GET":
        return _status(request, upload_id)
    if method not in {"HEAD", "PATCH", "DELETE"}:
        return _not_allowed(request, "OPTIONS, GET, HEAD, PATCH, DELETE")
    protocol.check_version(request.headers.get("Tus-Resumable"))
    if method == "HEAD":
        return _head(upload_id)
    if method == "PATCH":
        return _patch(request, upload_id)
    services.upload_terminate(upload_id=upload_id)
    return HttpResponse(status=204)


def _options() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Tus-Version"] = protocol.TUS_VERSION
    response["Tus-Extension"] = protocol.EXTENSIONS
    response["Tus-Max-Size"] = str(settings.MAX_UPLOAD_SIZE)
    response["Tus-Checksum-Algorithm"] = ",".join(protocol.CHECKSUM_ALGORITHMS)
    return response


def _not_allowed(request: HttpRequest, allowed: str) -> HttpResponse:
    response = error_response(
        request,
        status=405,
        code="invalid",
        message=f"{_method(request)} is not allowed here; use {allowed}.",
    )
    response["Allow"] = allowed
    return response


def _create(request: HttpRequest) -> HttpResponse:
    protocol.check_version(request.headers.get("Tus-Resumable"))
    if "Upload-Defer-Length" in request.headers:
        raise InvalidUploadHeader(
            "Upload-Defer-Length", "is not supported: send Upload-Length with the file's size."
        )
    length = protocol.byte_count("Upload-Length", request.headers.get("Upload-Length"))
    metadata = protocol.parse_metadata(request.headers.get("Upload-Metadata"))
    options = protocol.share_options(metadata)
    body_length = _declared_body_length(request)
    has_body = body_length is None or body_length > 0
    checksum = None
    if has_body:  # creation-with-upload
        protocol.check_offset_content_type(request.META.get("CONTENT_TYPE"))
        checksum = protocol.parse_checksum(request.headers.get("Upload-Checksum"))
        if body_length is not None and body_length > length:
            raise TooLarge(
                f"The body ({body_length} bytes) is longer than Upload-Length ({length})."
            )
    owner = _uploader(request)
    ratelimits.count(request, "upload")
    created = services.upload_create(length=length, options=options, owner=owner)
    upload = created.upload
    result = None
    if has_body:
        try:
            result = services.upload_write(
                upload_id=created.upload_id,
                offset=0,
                chunks=_body_chunks(request),
                declared_length=body_length,
                checksum=checksum,
                actor=actor_from_request(request),
            )
            upload = result.upload
        except ServiceError:
            # The upload exists: answer with its address and the offset it reached (the
            # bytes of a failed first chunk were discarded), for the client to go on with
            # PATCH. The protocol asks for "as many bytes as possible", not all or nothing.
            upload.refresh_from_db()
    location = absolute_url(request, reverse("uploads:upload", args=[created.upload_id]))
    if result is not None and result.created is not None:
        response = _completed_response(request, result, status=201)
    else:
        response = HttpResponse(status=201)
        _progress_headers(response, upload)
    response["Location"] = location
    return response


def _head(upload_id: str) -> HttpResponse:
    upload = services.upload_get(upload_id=upload_id)
    response = HttpResponse(status=200)
    _progress_headers(response, upload)
    response["Upload-Length"] = str(upload.length)
    response["Upload-Metadata"] = protocol.encode_metadata(_metadata_of(upload))
    return response


def _patch(request: HttpRequest, upload_id: str) -> HttpResponse:
    protocol.check_offset_content_type(request.META.get("CONTENT_TYPE"))
    offset = protocol.byte_count("Upload-Offset", request.headers.get("Upload-Offset"))
    checksum = protocol.parse_checksum(request.headers.get("Upload-Checksum"))
    result = services.upload_write(
        upload_id=upload_id,
        offset=offset,
        chunks=_body_chunks(request),
        declared_length=_declared_body_length(request),
        checksum=checksum,
        actor=actor_from_request(request),
    )
    if result.created is not None:
        return _completed_response(request, result, status=200)
    response = HttpResponse(status=204)
    _progress_headers(response, result.upload)
    return response


def _status(request: HttpRequest, upload_id: str) -> HttpResponse:
    status = services.upload_status(upload_id=upload_id, actor=actor_from_request(request))
    upload = status.upload
    body = {
        "status": upload.state,
        "offset": upload.offset,
        "length": upload.length,
        "expires_at": upload.expires_at,
        "share": _share_object(request, status.created) if status.created else None,
    }
    return _json(body, status=200)


def _progress_headers(response: HttpResponse, upload: Upload) -> None:
    response["Upload-Offset"] = str(upload.offset)
    if upload.completed_at is None:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())


def _completed_response(
    request: HttpRequest, result: services.WriteResult, *, status: int
) -> HttpResponse:
    """The answer to the request that completed the upload: the share object of POST
    /api/v1/shares, and its two links as headers too (tus clients read headers).

    200, not the protocol's 204, because it has a body; tus clients accept any 2xx.
    """
    share_object = _share_object(request, result.created)
    response = _json(share_object, status=status)
    response["Upload-Offset"] = str(result.upload.offset)
    response[SHARE_URL_HEADER] = share_object["url"]
    response[MANAGE_URL_HEADER] = share_object["manage_url"]
    return response


def _share_object(request: HttpRequest, created) -> dict:
    # The same object, through the same schema, as POST /api/v1/shares answers.
    share = ShareOut.model_validate(share_out(request, created.share, created.manage_token))
    return share.model_dump()


def _json(body: dict, *, status: int) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, cls=NinjaJSONEncoder) + "\n",
        status=status,
        content_type="application/json",
    )


def _metadata_of(upload: Upload) -> dict[str, str]:
    """Upload-Metadata as HEAD echoes it. Never the password: it is not kept (only its
    hash), and would not be echoed if it were."""
    metadata = {"filename": upload.name}
    if upload.content_type:
        metadata["filetype"] = upload.content_type
    metadata["expires_in"] = str(upload.expires_in)
    metadata["max_downloads"] = str(upload.max_downloads)
    return metadata


def _uploader(request: HttpRequest):
    owner = request_user(request)
    if owner is None and not settings.ALLOW_ANONYMOUS_UPLOADS:
        raise NotAuthenticated("Uploads need an account: send Authorization: Bearer <token>.")
    return owner


def _is_chunked(request: HttpRequest) -> bool:
    return (
        not request.META.get("CONTENT_LENGTH")
        and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    )


def _declared_body_length(request: HttpRequest) -> int | None:
    """Content-Length; None for a chunked body, whose length is known only at its end."""
    if _is_chunked(request):
        return None
    raw = request.META.get("CONTENT_LENGTH") or "0"
    return protocol.byte_count("Content-Length", raw)


def _body_chunks(request: HttpRequest) -> Iterator[bytes]:
    """The request body in pieces, as it arrives; BodyInterrupted if it breaks off."""
    # Django reads CONTENT_LENGTH bytes and takes a missing length for an empty body; the
    # WSGI server has already decoded a chunked body into wsgi.input.
    stream = request.META["wsgi.input"] if _is_chunked(request) else request
    while True:
        try:
            chunk = stream.read(READ_CHUNK)
        except Exception:
            # UnreadablePostError when the client went away; the WSGI server's own errors
            # (gunicorn: NoMoreData, InvalidChunkSize, ...) for broken framing. Only this
            # read is guarded, so nothing of ours is mistaken for the client's.
            raise services.BodyInterrupted() from None
        if not chunk:
            return
        yield chunk
