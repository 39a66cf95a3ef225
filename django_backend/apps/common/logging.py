"""Keep secrets out of log lines, and outside noise out of the admins' mail.

Share and manage tokens travel in URL paths, and Django logs the path of every 4xx/5xx
response. RedactTokensFilter, on the console handler, rewrites every record's message so
that a token never reaches a log collector. QuietFilter demotes what Django calls an error
but the internet sends all day (requests for hosts the site does not serve).
"""

import logging
import re

_TOKEN_IN_PATH = re.compile(
    r"(/(?:s|m|api/v1/shares|api/v1/manage|api/v1/uploads)/)[A-Za-z0-9_-]{16,64}(?=[/?#\s\"']|$)"
)


def redact(text: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", text)


class RedactTokensFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


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
