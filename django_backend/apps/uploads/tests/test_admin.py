"""Operators see uploads on their way in the admin, read-only, without their secrets."""

import pytest

from .tus import created_path, patch, upload_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(
        username="operator", password="pw-long-enough-1", email="op@example.org"
    )


def test_the_changelist_shows_progress_and_no_secrets(client, operator):
    path = created_path(client, 1000, metadata={"filename": "big.iso", "password": "s3cret"})
    patch(client, path, 0, b"x" * 250)
    upload = upload_of(path)
    client.force_login(operator)

    listing = client.get("/admin/uploads/upload/")
    detail = client.get(f"/admin/uploads/upload/{upload.pk}/change/")

    assert listing.status_code == 200
    assert b"big.iso" in listing.content
    assert b"250 of 1000 bytes (25%)" in listing.content
    assert detail.status_code == 200
    for secret in (upload.id_hash, upload.password, path.rsplit("/", 1)[-1]):
        assert secret.encode() not in detail.content
    assert client.get("/admin/uploads/upload/add/").status_code == 403
    assert client.post(f"/admin/uploads/upload/{upload.pk}/delete/").status_code == 403
