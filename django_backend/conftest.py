"""Fixtures shared by every app's tests.

Files go to a fresh MEDIA_ROOT and upload temp directory per test, so a test can assert
exactly what is left on disk.
"""

import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.http import HttpResponseBase
from django.utils import timezone

from apps.shares.services import lifecycle
from apps.shares.models import Share

REPO_DIR = Path(__file__).resolve().parent.parent
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


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """One test database per run, so that runs side by side cannot collide."""
    from django.conf import settings

    suffix = f"_{os.getpid()}"
    for database in settings.DATABASES.values():
        test = database.setdefault("TEST", {})
        if database["ENGINE"].endswith("sqlite3"):
            test["NAME"] = str(settings.VAR_DIR / f"test-db{suffix}.sqlite3")
        else:
            test["NAME"] = f"test_{database['NAME']}{suffix}"


@pytest.fixture(autouse=True)
def plain_static_files(settings) -> None:
    # The manifest storage needs `collectstatic`; pages under test only need the URLs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Rate-limit counters live in the cache, which outlives a test: start each at zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    upload_tmp = tmp_path / "upload-tmp"
    upload_tmp.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(upload_tmp)
    return settings.MEDIA_ROOT


@pytest.fixture
def upload_tmp(settings) -> Path:
    """The directory where uploads are spooled while they stream in."""
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def make_share(db) -> Callable[..., lifecycle.CreatedShare]:
    """Create a share through the service, as an upload would."""

    def make(content: bytes = b"hello, world\n", name: str = "hello.txt", **options):
        return lifecycle.share_create(file=ContentFile(content, name=name), **options)

    return make


def assert_api_error(response: HttpResponseBase, status: int, code: str) -> str:
    """The response is `status` with exactly {"error": {"code", "message"}}; its message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message.strip()
    return message


def end_share(share: Share, how: str) -> None:
    """Bring a share to an ended state in the database only, as time or a claim would.

    Through the ORM, not the services: those would purge the bytes themselves (or enqueue
    a purge), and the purge under test would have nothing left to do.
    """
    now = timezone.now()
    changes = {
        # Used up an hour ago: past the grace the purge job gives a last download.
        "consumed": {"downloads": share.max_downloads, "consumed_at": now - timedelta(hours=1)},
        "expired": {"expires_at": now - timedelta(minutes=1)},
        "revoked": {"revoked_at": now},
    }[how]
    Share.objects.filter(pk=share.pk).update(**changes)
