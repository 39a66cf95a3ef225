"""Keep issued secrets out of log lines, and outside noise out of the admins' mail.

Share and manage tokens travel in URL paths and API tokens in headers, and a client can put
any of them anywhere in what it sends: a link pasted at the end of a sentence
(`/s/<token>).`), percent-encoded, under an unknown path, in a query string, in a request
line so malformed that gunicorn rejects and quotes it. Django logs the path of every 4xx
and 5xx response, gunicorn the request line it rejects, so where a token stands in a line
cannot be predicted. A token is recognised by its shape instead: every secret the app
issues is a run of at least 22 url-safe base64 characters (share token 22, upload id 32,
manage and download-session tokens 43, API token "ots_" and 43), and the app's URLs take
16 or more as a token.

Two rules, by whose words a line carries:

- `redact`, for text a client may have written (the message of every record, except the
  loggers named in CODE_LOGGERS; the request id): every run of 16 or more url-safe
  characters, percent-escapes decoded, becomes "[redacted]", together with the escapes and
  characters glued to it. Lowercase or uppercase hex and UUIDs are kept: request ids,
  SHA-256 digests and stored file names are hex, and a random token of 22 characters or
  more is all hex with a chance below 10^-13.
- `redact_code`, for text the code wrote, where long names are the point (tracebacks'
  source lines, Celery's task names such as apps.shares.tasks.purge_after_last_download):
  the same, but only inside a word that looks like a URL or a path (it holds one of
  / \\ % ? & #), and API tokens, by their prefix, anywhere. In a traceback, the lines that
  name a frame's file and function keep their paths; an exception's message is data, and
  gets `redact`.

RedactTokensFilter sits on the console and mail handlers in LOGGING, and on gunicorn's own
loggers through django_backend/gunicorn.conf.py (redact_gunicorn_logs): those never reach
Django's handlers.
QuietFilter demotes what Django calls an error but the internet sends all day (requests for
hosts the site does not serve).
"""

import logging
import re
from typing import Any
from urllib.parse import unquote

from django.utils import log as django_log

REDACTED = "[redacted]"
SHORTEST_TOKEN = 16  # shares.tokens.TOKEN_PATTERN: the shortest run a URL takes as a token
# accounts.models.API_TOKEN_PREFIX (the ground floor imports no feature app).
API_TOKEN_PREFIX = "ots_"  # noqa: S105 - a prefix, not a secret
# Loggers whose messages are the code's own words, never a client's: Celery's, and the
# project's own line about a task it could not send.
CODE_LOGGERS = ("celery", "kombu", "core.celery")

# A run of url-safe characters and percent-escapes: how a token looks in a URL, raw or
# (partly) percent-encoded. An escape of a url-safe character is part of the run, and so
# is one of punctuation (%2E), which is redacted with the token it touches.
_SPAN = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2})+")
_RUN = re.compile(rf"[A-Za-z0-9_-]{{{SHORTEST_TOKEN},}}")
_KEPT = re.compile(
    r"[0-9a-f]+|[0-9A-F]+"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
)
# Not "=": keyword arguments in source lines (factory=SQLiteCursorWrapper) are code.
_URL_WORD = re.compile(r"\S*[/\\%?&#]\S*")
_API_TOKEN = re.compile(rf"{API_TOKEN_PREFIX}[A-Za-z0-9_-]{{{SHORTEST_TOKEN},}}")
# "module.ExceptionType: message", the line of a traceback that carries the message; within
# an exception group it is indented and marked with "|".
_EXCEPTION_LINE = re.compile(r"([\s|]*[A-Za-z_][\w.]*: )(.*)", re.DOTALL)
# '  File "/path/to/module.py", line 12, in function': names from the code's own files.
_FRAME_LINE = re.compile(r'[\s|]+File ".*", line \d+, in .*', re.DOTALL)


def _decoded(span: str) -> str:
    # Three rounds undo double and triple encoding (%252E); more is not a URL anyone pastes.
    for _ in range(3):
        unquoted = unquote(span, errors="replace")
        if unquoted == span:
            break
        span = unquoted
    return span


def _holds_token(span: str) -> bool:
    return any(not _KEPT.fullmatch(run) for run in _RUN.findall(_decoded(span)))


def _redact_span(match: re.Match[str]) -> str:
    span = match.group()
    return REDACTED if _holds_token(span) else span


def redact(text: str) -> str:
    """`text` with every token-shaped run replaced, wherever it stands (see the module)."""
    return _SPAN.sub(_redact_span, text)


def redact_code(text: str) -> str:
    """`text` with tokens replaced inside URL-like words and API tokens anywhere, long
    names of code elsewhere kept (see the module)."""
    text = _URL_WORD.sub(lambda match: redact(match.group()), text)
    return _API_TOKEN.sub(REDACTED, text)


def redact_traceback(text: str) -> str:
    """A formatted traceback or stack with tokens replaced: frames and source lines (the
    indented ones) as code, exception messages and anything else as data."""
    lines = []
    for line in text.splitlines(keepends=True):
        if _FRAME_LINE.fullmatch(line):
            lines.append(_API_TOKEN.sub(REDACTED, line))
        elif match := _EXCEPTION_LINE.fullmatch(line):
            lines.append(match.group(1) + redact(match.group(2)))
        elif line[:1].isspace():
            lines.append(redact_code(line))
        else:
            lines.append(redact(line))
    return "".join(lines)


# Lines of Django's error report (the mail to the admins): "KEY = value" in its request
# section, and "ExceptionType at /path" heading it and its traceback.
_REPORT_ITEM = re.compile(r"([A-Za-z_][\w.-]*) = (.*)", re.DOTALL)
_REPORT_EXCEPTION = re.compile(r"((?:Exception Type: )?[A-Za-z_][\w.]* at )(.*)", re.DOTALL)
# Sections of the report that describe the code and its configuration, never a request.
_REPORT_CODE_SECTIONS = ("Python Path:", "Installed Applications:", "Raised during:", "Settings:")
_REPORT_DATA_SECTIONS = ("Template", "Traceback", "Exception Type:", "Request information:")


def redact_report(text: str) -> str:
    """Django's plain-text error report with tokens replaced: the request's URL, path, query,
    headers and the exception as data; its traceback as a traceback; the paths, applications,
    middleware and settings it lists as they are (API tokens aside)."""
    lines = []
    code_section = False
    for line in text.splitlines(keepends=True):
        if line.startswith(_REPORT_CODE_SECTIONS):
            code_section = True
        elif line.startswith(_REPORT_DATA_SECTIONS):
            code_section = False
        if code_section:
            lines.append(_API_TOKEN.sub(REDACTED, line))
        elif match := _REPORT_ITEM.fullmatch(line):
            lines.append(f"{match.group(1)} = {redact(match.group(2))}")
        elif match := _REPORT_EXCEPTION.fullmatch(line):
            lines.append(match.group(1) + redact(match.group(2)))
        else:
            lines.append(redact_traceback(line))
    return "".join(lines)


def _is_code_logger(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in CODE_LOGGERS)


class RedactTokensFilter(logging.Filter):
    """Rewrites a record's message, traceback, stack and request id without tokens.

    On a handler, so that it sees every record the handler writes, propagated ones
    included; the record is changed in place, so later handlers get the redacted one too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redact_message = redact_code if _is_code_logger(record.name) else redact
        try:
            message, flatten = record.getMessage(), False
        except Exception:
            # Arguments that do not fit the message: logging would print msg and args in
            # full, so they are redacted together.
            message, flatten = f"{record.msg} {record.args!r}", True
        redacted = redact_message(message)
        if flatten or redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_traceback(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_traceback(record.stack_info)
        request_id = getattr(record, "request_id", None)
        if isinstance(request_id, str):
            record.request_id = redact(request_id)
        return True


class AdminEmailHandler(django_log.AdminEmailHandler):
    """Django's error mail to the admins, without tokens.

    RedactTokensFilter cleans the record, but the mail is built from the request itself:
    its report quotes the URL, the path, the query, every header (Referer, X-Request-ID)
    and the exception, any of which can carry a token.
    """

    def send_mail(self, subject: str, message: str, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("html_message"):
            kwargs["html_message"] = redact(kwargs["html_message"])
        super().send_mail(redact(subject), redact_report(message), *args, **kwargs)


# gunicorn writes through loggers of its own, which Django's LOGGING does not reach: the
# request line of a request it rejects ("Invalid request from ip=...: Invalid HTTP Version:
# 'GET /m/<token>...'"), the URI of one that failed, and the access log when it is on.
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def redact_gunicorn_logs() -> None:
    """Put RedactTokensFilter on gunicorn's loggers (gunicorn.conf.py calls this).

    On the loggers rather than their handlers: it then sees every record, whatever handlers
    gunicorn attaches (stderr, --error-logfile, --access-logfile, syslog, a log config) and
    however often it attaches them again (on a reload, on USR1). Workers are forked from
    the master and inherit it. Calling it again adds nothing.
    """
    for name in GUNICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokensFilter) for existing in logger.filters):
            logger.addFilter(RedactTokensFilter())


class QuietFilter(logging.Filter):
    """Turn a record into one WARNING line without a traceback.

    For events that Django logs as errors but that come from outside and need no one's
    attention: a request for a host name the site does not serve (scanners send thousands)
    is answered 400 and noted, and not mailed to the admins, whose mail handler takes ERROR
    and above only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True
