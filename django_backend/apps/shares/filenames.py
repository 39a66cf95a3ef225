"""Making user-supplied file names and types safe to store, show and send back."""

import mimetypes
import re
import unicodedata
from urllib.parse import quote

MAX_NAME_LENGTH = 200
FALLBACK_NAME = "download"
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._()+ -]")


def clean_filename(raw: str) -> str:
    """The user's file name as we keep it: no path, no control characters, no quotes.

    It is shown (escaped) on pages and returned in Content-Disposition; it never names a
    file on disk.
    """
    name = unicodedata.normalize("NFC", raw or "")
    # Keep the last path component, whichever separator the client's OS uses.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Categories C* are control, format, surrogate, private-use and unassigned characters.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch != '"')
    name = name.strip().rstrip(". ")
    if name in {"", ".", ".."}:
        return FALLBACK_NAME
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and len(ext) <= 16:
            name = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH].rstrip()
    return name


def clean_content_type(raw: str | None, name: str) -> str:
    """The declared type if it is well formed, else a guess from the name."""
    candidate = (raw or "").split(";", 1)[0].strip().lower()
    if _CONTENT_TYPE.match(candidate) and candidate != "application/x-www-form-urlencoded":
        return candidate
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def attachment_disposition(name: str) -> str:
    """An RFC 6266 attachment header: an ASCII fallback and the exact UTF-8 name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = _UNSAFE_ASCII.sub("_", ascii_name).strip() or FALLBACK_NAME
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
