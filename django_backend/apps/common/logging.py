"""Keep secrets out of log lines.

Share and manage tokens travel in URL paths, and Django logs the path of every 4xx/5xx
response. This filter, on the console handler, rewrites every record's message so that a
token never reaches a log collector.
"""

import logging
import re

_TOKEN_IN_PATH = re.compile(
    r"(/(?:s|m|api/v1/shares|api/v1/manage)/)[A-Za-z0-9_-]{16,64}(?=[/?#\s\"']|$)"
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
