"""JSON API v1 (shared/design.md §4), with its OpenAPI document at /api/v1/openapi.json.

django-ninja validates types and writes the document; ranges are checked by the service,
so the API and the upload page share one set of rules. Every error, ours or the
framework's, leaves as `{"error": {"code": ..., "message": ...}}`.
"""

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, NinjaAPI, Path, Status, UploadedFile
from ninja.errors import HttpError, ValidationError
from ninja.renderers import JSONRenderer

from apps.accounts.auth import request_user
from apps.common import ratelimits
from apps.common.errors import error_response, service_error_response
from apps.common.exceptions import NotAuthenticated, ServiceError

from . import selectors
from .clients import actor_from_request
from .downloads import claim_and_stream
from .exceptions import InvalidShareOption
from .filenames import clean_filename
from .links import absolute_url
from .schemas import ERRORS, ErrorOut, ShareMetaOut, ShareOut, SharePageOut, share_out
from .services import lifecycle
from .uploads import refuse_empty, spool_request_body


class NewlineJSONRenderer(JSONRenderer):
    """JSON that ends with a newline, as the error replies do: `curl` output then leaves
    the shell prompt on a line of its own."""

    def render(self, request: HttpRequest, data: object, *, response_status: int) -> str:
        return super().render(request, data, response_status=response_status) + "\n"


class ShareAPI(NinjaAPI):
    """The API, whose OpenAPI document states the rules the services enforce."""

    def get_openapi_schema(self, **kwargs) -> dict:
        schema = super().get_openapi_schema(**kwargs)
        _state_the_rules(schema)
        return schema


api = ShareAPI(
    title="OneTimeShare API",
    version="1",
    description=(
        "Upload a file, get a link that works a set number of times, then the file is gone."
    ),
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    renderer=NewlineJSONRenderer(),
)


def _upload_rules() -> dict[str, dict]:
    """The upload options as the services check them, from the settings in force now (a
    schema fixed at import would keep the values of whatever settings came first)."""
    return {
        "expires_in": {
            "type": "integer",
            "minimum": settings.MIN_EXPIRES_IN,
            "maximum": settings.MAX_EXPIRES_IN,
            "default": settings.DEFAULT_EXPIRES_IN,
            "description": "Seconds until the link expires.",
        },
        "max_downloads": {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.MAX_DOWNLOADS_LIMIT,
            "default": 1,
            "description": "Downloads the link allows.",
        },
        "password": {
            "type": "string",
            "maxLength": lifecycle.MAX_PASSWORD_LENGTH,
            "default": "",
            "description": "Optional: the recipient must send it to download.",
        },
    }


def _file_rule() -> str:
    return (
        f"The file: not empty, at most {settings.MAX_UPLOAD_SIZE} bytes (413 `too_large` beyond)."
    )


def _state_the_rules(schema: dict) -> None:
    """Write the services' ranges, lengths and defaults into the generated document.

    django-ninja documents types only: the ranges are checked by the services (one set of
    rules for the API and the upload page) and depend on settings, so they are stated here,
    each time the document is generated.
    """
    # ninja's operation ids are the view's module and name: "apps_shares_api_create_share".
    prefix = __name__.replace(".", "_") + "_"
    operations = {
        operation["operationId"].removeprefix(prefix): operation
        for methods in schema["paths"].values()
        for operation in methods.values()
        if operation.get("operationId", "").startswith(prefix)
    }
    rules = _upload_rules()
    multipart = operations["create_share"]["requestBody"]["content"]["multipart/form-data"]
    fields = multipart["schema"]
    if "$ref" in fields:
        fields = schema["components"]["schemas"][fields["$ref"].rsplit("/", 1)[1]]
    for name, rule in rules.items():
        fields["properties"][name] = {"title": fields["properties"][name].get("title"), **rule}
    fields["properties"]["file"]["description"] = _file_rule()

    put = operations["put_share"]
    put["requestBody"]["description"] = _file_rule()
    _set_parameter_rules(put, rules)
    _set_parameter_rules(
        operations["list_shares"],
        {"limit": {"type": "integer", "minimum": 1, "maximum": selectors.PAGE_LIMIT_MAX}},
    )


def _set_parameter_rules(operation: dict, rules: dict[str, dict]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["name"] in rules:
            parameter["schema"] = {**parameter["schema"], **rules[parameter["name"]]}
            parameter["schema"].pop("anyOf", None)  # "or null": not a value a query can send


def _uploader(request: HttpRequest):
    owner = request_user(request)
    if owner is None and not settings.ALLOW_ANONYMOUS_UPLOADS:
        raise NotAuthenticated("Uploads need an account: send Authorization: Bearer <token>.")
    return owner


@api.exception_handler(ServiceError)
def _service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    return service_error_response(request, exc)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors:
        field = str(error.get("loc", ["request"])[-1])
        problems.append(f"{field}: {error.get('msg', 'is invalid')}")
    return error_response(request, status=400, code="invalid", message="; ".join(problems))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {400: "invalid", 404: "not_found", 405: "invalid"}.get(exc.status_code, "invalid")
    return error_response(request, status=exc.status_code, code=code, message=str(exc))


@api.post(
    "/shares",
    response={201: ShareOut, 413: ErrorOut, **ERRORS},
    summary="Upload a file (multipart)",
)
def create_share(
    request: HttpRequest,
    file: File[UploadedFile],
    expires_in: Form[int | None] = None,
    max_downloads: Form[int] = 1,
    password: Form[str] = "",
):
    """The options' ranges and defaults are those of the server's settings, as this
    document states them. Anonymous, or as a user with `Authorization: Bearer <token>`."""
    owner = _uploader(request)
    ratelimits.count(request, "upload")
    refuse_empty(file)
    created = lifecycle.share_create(
        file=file,
        content_type=file.content_type,
        expires_in=expires_in,
        max_downloads=max_downloads,
        password=password,
        actor=actor_from_request(request),
        owner=owner,
        via="api",
    )
    return Status(201, share_out(request, created.share, created.manage_token))


@api.put(
    "/shares/{key}",
    response={201: ShareOut, 413: ErrorOut, **ERRORS},
    summary="Upload a file as the raw request body (curl -T FILE URL/)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def put_share(
    request: HttpRequest,
    key: Path[str],
    expires_in: int | None = None,
    max_downloads: int = 1,
    password: str = "",
):
    """`key` is the file's name, as `curl -T FILE URL/` appends it. The body is the file,
    streamed to disk as it arrives; options are query parameters."""
    # Cleaned before it names anything, even the temporary file.
    filename = clean_filename(key)
    # Check the caller, limits and options before reading a possibly large body.
    owner = _uploader(request)
    ratelimits.count(request, "upload")
    lifecycle.validate_share_options(
        expires_in=expires_in,
        max_downloads=max_downloads,
        password=password,
    )
    content_type = request.META.get("CONTENT_TYPE", "")
    file = spool_request_body(request, name=filename, content_type=content_type)
    try:
        refuse_empty(file)
        created = lifecycle.share_create(
            file=file,
            name=filename,
            content_type=content_type,
            expires_in=expires_in,
            max_downloads=max_downloads,
            password=password,
            actor=actor_from_request(request),
            owner=owner,
            via="put",
        )
    finally:
        file.close()
    return Status(201, share_out(request, created.share, created.manage_token))


# `curl -T - URL/api/v1/shares/` (from a pipe) and a hand-written PUT have no file name to
# append; ninja alone would answer "PUT is not allowed here", which helps nobody.
@api.put("/shares", include_in_schema=False)
def put_without_a_name(request: HttpRequest) -> HttpResponse:
    example = absolute_url(request, "/api/v1/shares/")
    response = error_response(
        request,
        status=405,
        code="invalid",
        message=(
            "PUT needs the file's name in the URL: PUT /api/v1/shares/<filename>, "
            f"for example `curl -T report.pdf {example}` (curl appends the name to a URL "
            f"ending in /; from a pipe, name it: `curl -T - {example}report.pdf`). "
            "Or POST /api/v1/shares as multipart with a `file` field."
        ),
    )
    response["Allow"] = "GET, POST"
    return response


@api.api_operation(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], "/shares/", include_in_schema=False
)
def shares_with_a_slash(request: HttpRequest) -> HttpResponse:
    if request.method == "PUT":
        return put_without_a_name(request)
    return error_response(
        request,
        status=404,
        code="not_found",
        message="There is nothing at /api/v1/shares/: the list and uploads are at /api/v1/shares.",
    )


@api.get(
    "/shares",
    response={200: SharePageOut, **ERRORS},
    summary="Your shares, newest first (needs an API token)",
)
def list_shares(request: HttpRequest, limit: int = 20, after: str | None = None):
    """Cursor-paginated: pass the `next` of one page as `after` to get the next."""
    owner = request_user(request)
    if owner is None:
        raise NotAuthenticated()
    page = selectors.shares_of_owner(owner=owner, limit=limit, after=after)
    return {"shares": page.shares, "next": page.next_cursor}


# Same path as the PUT above: one URL pattern, two methods.
@api.get("/shares/{key}", response={200: ShareMetaOut, **ERRORS}, summary="Public metadata")
def get_share(request: HttpRequest, key: Path[str]):
    """`key` is the share token. Never counts as a download."""
    return lifecycle.share_open(share_token=key, actor=actor_from_request(request))


def _password_from(request: HttpRequest) -> str:
    if request.content_type == "application/json":
        try:
            payload = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            # RecursionError: nested deeper than the parser goes, which no client needs.
            raise InvalidShareOption("body", "is not valid JSON.") from None
        if not isinstance(payload, dict):
            # Not "no password": a client that sent something else meant something else.
            raise InvalidShareOption("body", 'must be a JSON object, such as {"password": "..."}.')
        password = payload.get("password", "")
        if not isinstance(password, str):
            raise InvalidShareOption("password", "must be a string.")
        return password
    return request.POST.get("password", "")


@api.post(
    "/shares/{token}/download",
    response={200: None, **ERRORS},
    summary="Claim one download and receive the bytes",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"password": {"type": "string"}}}
                },
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"password": {"type": "string"}}}
                },
            },
        },
        "responses": {
            "200": {
                "description": "The file, as an attachment",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    },
)
def download_share(request: HttpRequest, token: str):
    """Counts as a download the moment it starts. 401/403 on a missing or wrong password
    consume nothing. `Content-Location` names the download session's URL: for its window
    (DOWNLOAD_SESSION_TTL), GET it with `Range` to resume a download that broke off."""
    return claim_and_stream(request, share_token=token, password=_password_from(request))


@api.get("/manage/{manage_token}", response={200: ShareOut, **ERRORS}, summary="Sender's view")
def get_managed_share(request: HttpRequest, manage_token: str):
    share = selectors.share_get_for_manage(manage_token=manage_token)
    return share_out(request, share, manage_token)


@api.delete("/manage/{manage_token}", response={204: None, **ERRORS}, summary="Revoke and purge")
def revoke_share(request: HttpRequest, manage_token: str):
    share = selectors.share_get_for_manage(manage_token=manage_token)
    lifecycle.share_revoke(share_id=share.pk, actor=actor_from_request(request))
    return Status(204, None)
