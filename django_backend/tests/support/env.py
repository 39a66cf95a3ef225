"""The repository's paths, and the environment of an app process that a test or the benchmark
starts: production settings on plain HTTP on loopback, built from .env.sample's defaults.

Imports neither Django nor pytest: bench/ uses it too.
"""

import os
import re
import secrets
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[3]
DJANGO_DIR = REPO_DIR / "django_backend"
VENV_BIN = Path(sys.executable).parent  # python, gunicorn, celery of this virtualenv


def documented_defaults() -> dict[str, str]:
    """Every setting of .env.sample at its documented default."""
    values = {}
    for line in (REPO_DIR / ".env.sample").read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip()):
            values[match.group(1)] = match.group(2)
    return values


def loopback_server_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment of an app process a test starts: production settings (debug off, a
    fresh secret key) over plain HTTP on loopback, `settings` on top.

    Built from .env.sample's defaults rather than this process's environment, so that a
    developer's shell or .env (read for any variable not set) cannot point the server
    under test at their Redis, bucket or nginx offload.
    """
    return {
        **documented_defaults(),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback: no redirect to https, cookies without the Secure flag.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        **settings,
    }
