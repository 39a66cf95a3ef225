"""Who may upload and how much: the size limit, the owner's quota and the rate limit apply
at creation, from Upload-Length, before a byte is sent."""

import pytest
from django.core.files.base import ContentFile

from apps.accounts.models import User
from apps.accounts.services import api_token_create
from apps.shares.services import lifecycle
from apps.uploads.models import Upload
from tests.support.api import assert_api_error

from .tus import create, created_path, patch

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user(username="alice", password="pw-long-enough-1")


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token_create(user=user, name='script').key}"}


def test_an_api_token_makes_the_share_its_users(client, alice):
    path = created_path(client, 3, headers=bearer(alice))

    share_object = patch(client, path, 0, b"abc").json()

    assert Upload.objects.get().owner == alice
    assert alice.shares.get().sha256 == share_object["sha256"]


def test_the_quota_counts_active_shares_and_unfinished_uploads(client, alice, settings):
    settings.USER_QUOTA_BYTES = 1000
    lifecycle.share_create(file=ContentFile(b"x" * 400, name="old.bin"), owner=alice)
    headers = bearer(alice)
    assert create(client, 300, headers=headers).status_code == 201

    # 400 stored + 300 on their way + 301 would pass 1000.
    message = assert_api_error(create(client, 301, headers=headers), 413, "too_large")

    assert "quota" in message
    assert create(client, 300, headers=headers).status_code == 201
    assert Upload.objects.count() == 2
    # Anonymous uploads have no quota.
    assert create(client, 900).status_code == 201


def test_the_size_limit_applies_at_creation_whoever_asks(client, alice, settings):
    settings.MAX_UPLOAD_SIZE = 500

    assert_api_error(create(client, 501, headers=bearer(alice)), 413, "too_large")
    assert_api_error(create(client, 501), 413, "too_large")
    assert Upload.objects.count() == 0


def test_creation_is_rate_limited_with_the_uploads_limit_and_patches_are_not(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "2/h"}
    first = created_path(client, 30)
    created_path(client, 30)

    response = create(client, 30)

    assert_api_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    assert response["Tus-Resumable"] == "1.0.0"
    for offset in range(0, 30, 10):
        assert patch(client, first, offset, b"x" * 10).status_code in {200, 204}
    assert Upload.objects.count() == 2


def test_creation_shares_the_rate_limit_with_the_other_uploads(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "1/h"}
    client.put("/api/v1/shares/a.txt", data=b"abc", content_type="application/octet-stream")

    assert_api_error(create(client, 3), 429, "rate_limited")
