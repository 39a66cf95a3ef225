"""Fixtures shared by every app's tests.

Files go to a fresh MEDIA_ROOT and upload temp directory per test, so a test can assert
exactly what is left on disk. Plain helpers live in tests/support.
"""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile

from apps.shares.services import lifecycle


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


@pytest.fixture
def make_share(db) -> Callable[..., lifecycle.CreatedShare]:
    """Create a share through the service, as an upload would."""

    def make(content: bytes = b"hello, world\n", name: str = "hello.txt", **options):
        return lifecycle.share_create(file=ContentFile(content, name=name), **options)

    return make
