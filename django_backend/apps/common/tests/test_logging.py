"""No issued token reaches a log line, whatever surrounds it and whatever the path.

Requests go through the test client with the project's LOGGING, and the assertions are on
what its console handler writes. gunicorn's own loggers are covered by
test_logging_gunicorn.py, through a real gunicorn.
"""

import io
import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import re_path

from apps.common.logging import (
    API_TOKEN_PREFIX,
    SHORTEST_TOKEN,
    AdminEmailHandler,
    RedactTokensFilter,
    redact,
    redact_traceback,
)
from tests.support.env import DJANGO_DIR, VENV_BIN, loopback_server_env

# Every kind of secret the app issues, by its shape: stand-ins made as the app makes them
# (apps.common imports no feature app); test_tokens_issued_for_real_have_the_shapes_tested
# checks the real ones against them.
TOKEN_KINDS: dict[str, Callable[[], str]] = {
    # shares.tokens.share_token_for: 22 characters of a SHA-256 digest, url-safe base64.
    "share": lambda: secrets.token_urlsafe(16),
    # uploads.services.new_upload_id.
    "upload": lambda: secrets.token_urlsafe(24),
    # shares.tokens.new_manage_token and the download session's, services.sessions.
    "manage-or-session": lambda: secrets.token_urlsafe(32),
    # accounts.models.ApiToken.new_key.
    "api": lambda: API_TOKEN_PREFIX + secrets.token_urlsafe(32),
}

# What a token may stand between: a link pasted at the end of a sentence, in Markdown, in
# brackets, percent-encoded, with a file extension, doubled, glued to other text.
SHAPES = [
    "{}",
    "{}.",
    "{},",
    "{})",
    "{}),",
    "{}>",
    "{};",
    "{}:",
    "{}!",
    "{}'",
    '{}"',
    "{}]",
    "{}}}",
    "{}*",
    "{}~",
    "{}|",
    "{}\\",
    "{}…",
    "{}é",
    "{}.pdf",
    "{}...",
    "{} ",
    "{}%2E",
    "{}%29",
    "{}%3E",
    "{}%20",
    "{}%0A",
    "{}%09",
    "{}%C3%A9",
    "{}%25",
    "{}%252E",
    "({})",
    "<{}>",
    "'{}'",
    ".{}",
    "%2E{}",
    "%20{}",
    "x{}",
    "-{}-",
    "{}{}",
    "{}/",
    "{}/x.",
]

# Routes that take a token, unknown paths, static files.
PATHS = [
    "/s/{}",
    "/s/{}/report",
    "/m/{}",
    "/m/{}/revoke",
    "/d/{}",
    "/api/v1/shares/{}",
    "/api/v1/shares/{}/download",
    "/api/v1/manage/{}",
    "/api/v1/uploads/{}",
    "/x/{}",
    "/{}",
    "/static/{}",
]


@pytest.fixture(scope="module")
def module_client() -> Client:
    """One client for the many requests here: each new one loads the middleware again,
    WhiteNoise's scan of the static files included, which would cost more than the test."""
    return Client()


@pytest.fixture
def console_output() -> Iterator[io.StringIO]:
    """What the project's console handler (LOGGING["handlers"]["console"]) writes."""
    handler = next(h for h in logging.getLogger("django").handlers if h.name == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def assert_logged_without(logged: str, token: str, requests: int) -> None:
    # The requests were logged, each as an error of django.request (so that the test can
    # fail), and redacted.
    assert logged.count("logger=django.request ") == requests, logged
    assert "[redacted]" in logged, logged
    assert token not in logged


# One request per case, each case a test of its own: a failure names the token's kind, its
# surroundings and the path.
@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_no_token_reaches_the_log_whatever_surrounds_it(
    module_client, console_output, kind, shape, path
):
    token = TOKEN_KINDS[kind]()

    response = module_client.get(path.format(shape.format(token, token)))

    assert response.status_code >= 400
    assert_logged_without(console_output.getvalue(), token, requests=1)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "head"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_no_token_reaches_the_log_whatever_the_method(
    module_client, console_output, kind, path, method
):
    token = TOKEN_KINDS[kind]()

    response = getattr(module_client, method)(path.format(f"{token})."))

    assert response.status_code >= 400
    assert_logged_without(console_output.getvalue(), token, requests=1)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_a_token_in_the_query_string_or_the_request_id_is_not_logged(client, console_output, kind):
    token = TOKEN_KINDS[kind]()

    client.get(f"/x/{token}?t={token}", HTTP_X_REQUEST_ID=token)

    logged = console_output.getvalue()
    assert_logged_without(logged, token, requests=1)
    assert "request_id=[redacted] " in logged


@pytest.fixture
def issued_for_real(client, make_share, django_user_model) -> dict[str, str]:
    """One token of each kind, issued by the app as its users get them."""
    created = make_share()
    claim = client.post(f"/s/{created.share_token}")
    upload = client.generic(
        "POST", "/api/v1/uploads/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5"}
    )
    client.force_login(django_user_model.objects.create_user("alice"))
    tokens_page = client.post("/account/tokens/", {"name": "ci"})
    assert (claim.status_code, upload.status_code, tokens_page.status_code) == (303, 201, 200)
    client.logout()
    return {
        "share": created.share_token,
        "manage": created.manage_token,
        "session": claim["Location"].rsplit("/", 1)[-1],
        "upload": upload["Location"].rsplit("/", 1)[-1],
        "api": re.search(rf"{API_TOKEN_PREFIX}[A-Za-z0-9_-]+", tokens_page.text).group(),
    }


@pytest.mark.django_db
def test_tokens_issued_for_real_have_the_shapes_tested(issued_for_real):
    shapes = {kind: make() for kind, make in TOKEN_KINDS.items()}
    stand_ins = {
        "share": shapes["share"],
        "manage": shapes["manage-or-session"],
        "session": shapes["manage-or-session"],
        "upload": shapes["upload"],
        "api": shapes["api"],
    }

    for kind, token in issued_for_real.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), kind
        assert len(token) == len(stand_ins[kind]) >= SHORTEST_TOKEN, kind
        assert token.startswith(API_TOKEN_PREFIX) == (kind == "api"), kind


@pytest.mark.django_db
def test_tokens_issued_for_real_are_not_logged(client, issued_for_real, console_output):
    for token in issued_for_real.values():
        for shape in ("/s/{}).", "/m/{}>", "/d/{}%2E", "/x/%2E{}", "/api/v1/manage/{};"):
            client.get(shape.format(token))

    logged = console_output.getvalue()
    assert logged.count("logger=django.request ") == 25, logged
    for token in issued_for_real.values():
        assert token not in logged


@pytest.mark.django_db
def test_a_410_on_a_share_link_is_logged_without_its_token(client, make_share, console_output):
    created = make_share()
    assert client.post(f"/s/{created.share_token}").status_code == 303  # its one download

    assert client.get(f"/s/{created.share_token}").status_code == 410
    assert client.get(f"/m/{created.manage_token}.").status_code == 404

    logged = console_output.getvalue()
    assert "Gone: /s/[redacted]" in logged
    assert "Not Found: /m/[redacted]." in logged
    assert created.share_token not in logged
    assert created.manage_token not in logged


# --- what the redaction keeps -------------------------------------------------------------


def test_request_ids_digests_primary_keys_and_timings_are_kept():
    line = (
        "request 7f1c2a9e-3b4d-4e5f-8a6b-0c1d2e3f4a5b id 0123456789abcdef0123456789abcdef: "
        "share 4242 stored as shares/9f86d081884c7d659a2feaa0c55ad015 "
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 in 12.5 ms"
    )

    assert redact(line) == line


def test_words_and_paths_short_of_a_token_are_kept():
    line = "Not Found: /account/password/done/ and /api/v1/shares/report-2024.pdf (Gone)"

    assert redact(line) == line


def test_a_percent_encoded_token_is_redacted_with_what_is_encoded_around_it():
    token = TOKEN_KINDS["manage-or-session"]()
    encoded = "".join(f"%{byte:02X}" for byte in token.encode())

    for text in (f"/s/%2E{token}%2E", f"/s/{encoded}", f"/s/%252E{token[:10]}%2D{token[10:]}"):
        redacted = redact(text)
        assert redacted == "/s/[redacted]", text


def test_celery_task_names_and_traceback_frames_stay_readable():
    token = TOKEN_KINDS["manage-or-session"]()
    try:
        raise ValueError(f"no share at /m/{token}. for '{token}'")
    except ValueError:
        traceback_text = logging.Formatter().formatException(sys.exc_info())

    redacted = redact_traceback(traceback_text)

    assert token not in redacted
    assert "test_celery_task_names_and_traceback_frames_stay_readable" in redacted
    assert "ValueError: no share at /m/[redacted]. for '[redacted]'" in redacted
    task_line = "Task apps.shares.tasks.purge_after_last_download[1f0e] succeeded"
    assert _filtered("celery.app.trace", task_line).getMessage() == task_line


def _filtered(logger: str, message: str, *args: object) -> logging.LogRecord:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, message, args, None)
    assert RedactTokensFilter().filter(record)
    return record


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_every_logger_loses_tokens_in_messages_arguments_and_tracebacks(kind):
    token = TOKEN_KINDS[kind]()

    for logger in ("django.request", "gunicorn.error", "apps.shares", "celery.worker", "x"):
        assert token not in _filtered(logger, "Not Found: %s", f"/x/{token}),").getMessage()
        assert token not in _filtered(logger, "GET %s", f"/x/?t={token}),").getMessage()
    # Text a client wrote, wherever the token stands in it.
    for logger in ("django.request", "django.security.csrf", "gunicorn.error", "apps.shares"):
        assert token not in _filtered(logger, "Invalid method '%s'", token).getMessage()
    try:
        raise RuntimeError(f"token {token}")
    except RuntimeError:
        record = logging.LogRecord("apps.x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    RedactTokensFilter().filter(record)
    assert token not in logging.Formatter().format(record)


# --- the mail to the admins ---------------------------------------------------------------


def _failing_view(request: HttpRequest, rest: str) -> HttpResponse:
    raise RuntimeError(f"could not serve {rest!r}")


urlpatterns = [re_path(r"^s/(?P<rest>.*)$", _failing_view)]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_the_error_mail_to_the_admins_carries_no_token(client, settings, mailoutbox, kind):
    settings.ADMINS = [("Ops", "ops@example.com")]
    token = TOKEN_KINDS[kind]()
    handler = AdminEmailHandler()
    handler.addFilter(RedactTokensFilter())
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(handler)
    client.raise_request_exception = False
    try:
        response = client.get(
            f"/s/{token}).",
            {"t": token},
            HTTP_REFERER=f"https://chat.example/s/{token}).",
            HTTP_X_REQUEST_ID=token,
        )
    finally:
        request_logger.removeHandler(handler)

    assert response.status_code == 500
    [mail] = mailoutbox
    assert token not in mail.subject
    assert token not in mail.body
    assert mail.subject.endswith("Internal Server Error: /s/[redacted]).")
    assert "RuntimeError at /s/[redacted])." in mail.body
    assert "could not serve '[redacted]).'" in mail.body
    assert "PATH_INFO = '/s/[redacted]).'" in mail.body
    assert "QUERY_STRING = 't=[redacted]'" in mail.body
    # The traceback and the settings stay readable.
    assert "in _failing_view" in mail.body
    assert "'django.contrib.staticfiles'" in mail.body


def test_the_mail_handler_of_the_settings_is_the_redacting_one(tmp_path):
    # LOGGING gets its mail handler only when admins and a mail server are configured at
    # start-up: a process of its own with both.
    env = loopback_server_env(
        tmp_path, DJANGO_ADMINS="ops@example.com", EMAIL_URL="smtp://127.0.0.1:2525"
    )
    script = (
        "import django, logging; django.setup(); "
        "print(sorted(type(h).__module__ + '.' + type(h).__name__ "
        "for h in logging.getLogger('django').handlers))"
    )
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script],
        cwd=DJANGO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    handlers = result.stdout.strip().splitlines()[-1]
    assert handlers == "['apps.common.logging.AdminEmailHandler', 'logging.StreamHandler']"
