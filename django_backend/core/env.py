"""Settings from the environment: one small reader per kind of value.

Every reader takes the variable's name and its default, and
- treats an empty value (`NAME=`, as .env.sample writes many of them) as the default;
- stops start-up with ImproperlyConfigured, naming the variable, when the value is bad;
- records the variable in `READ`, so that a test can hold settings.py and .env.sample to
  each other: every variable read is documented, every variable documented is read.

Values come through django-environ (which also loads the `.env` file, and parses the
database and email URLs).
"""

import re
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()

# Each variable read so far, with its default written as .env.sample would write it.
READ: dict[str, str] = {}

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def read_env_file(path: Path) -> None:
    """Load `path` when it exists; a variable already in the environment wins over it."""
    environ.Env.read_env(path, overwrite=False)


def _read(name: str, default: str) -> str:
    """The variable's text, stripped; "" when it is unset or empty."""
    READ[name] = default
    return _env.str(name, default="").strip()


def _one_of(options: Sequence[str]) -> str:
    quoted = [repr(option) for option in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def string(name: str, default: str = "", *, pattern: str = "", like: str = "") -> str:
    """Text; with `pattern`, a value that does not match it whole is refused (`like` shows
    an example in the message)."""
    value = _read(name, default) or default
    if value and pattern and not re.fullmatch(pattern, value):
        raise ImproperlyConfigured(f"{name} must look like {like or pattern}, got {value!r}.")
    return value


def boolean(name: str, default: bool) -> bool:
    value = _read(name, "1" if default else "0").lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}.")


def integer(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number between `minimum` and `maximum` (inclusive)."""
    value = _read(name, str(default))
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}.")
    return number


def size(name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A number of bytes, written out in full (1073741824, not 1G)."""
    return integer(name, default, minimum=minimum, maximum=maximum)


def choice(name: str, options: Sequence[str], default: str) -> str:
    """One of `options`, in any letter case; returned as `options` spells it. With an empty
    default, "empty" is one more valid answer."""
    value = _read(name, default)
    if not value:
        return default
    for option in options:
        if value.lower() == option.lower():
            return option
    empty = " or empty" if default == "" else ""
    raise ImproperlyConfigured(f"{name} must be {_one_of(options)}{empty}, got {value!r}.")


def rate(name: str, default: str) -> str:
    """A rate limit as count/period, the period in s, m, h or d with an optional multiple
    (30/h, 10/10m)."""
    return string(name, default, pattern=r"\d+/\d*[smhd]", like="30/h (count/period)")


def url(name: str, schemes: Sequence[str], default: str = "") -> str:
    """A URL with one of `schemes`, or empty."""
    value = _read(name, default) or default
    prefixes = tuple(f"{scheme}://" for scheme in schemes)
    if value and not value.startswith(prefixes):
        raise ImproperlyConfigured(
            f"{name} must start with {' or '.join(prefixes)}, got {value!r}."
        )
    return value


def string_list(name: str, default: Sequence[str]) -> list[str]:
    """Comma-separated; blank items are dropped."""
    value = _read(name, ",".join(default))
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def networks(name: str) -> list[IPv4Network | IPv6Network]:
    """Comma-separated addresses or networks in CIDR notation (10.0.0.0/8, ::1); an
    address is a network of one. Empty: none."""
    value = _read(name, "")
    try:
        return [ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip()]
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be addresses or networks (CIDR), comma-separated: {exc}"
        ) from None


def path(name: str, default: Path) -> Path:
    return Path(_read(name, "") or default)


def database(name: str, default: str) -> dict[str, Any]:
    """Django's DATABASES entry for a database URL (postgres://…, sqlite:///…)."""
    value = _read(name, "") or default
    try:
        return _env.db_url_config(value)
    except (ImproperlyConfigured, ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None


def email(name: str) -> dict[str, Any]:
    """EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, … for an email URL (smtp+tls://…); {} when
    the variable is empty."""
    value = _read(name, "")
    if not value:
        return {}
    try:
        return _env.email_url_config(value)
    except (ImproperlyConfigured, ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{name} is not a valid email URL: {exc}") from None
