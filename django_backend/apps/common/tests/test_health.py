import pytest


def test_liveness_answers_ok_without_touching_dependencies(client, settings):
    # Even with storage broken, liveness only says the process serves.
    settings.MEDIA_ROOT = "/proc/version/not-a-directory"

    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_database_and_storage(client, media_root):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for name in ("database", "storage"):
        assert body["checks"][name]["ok"] is True
        assert body["checks"][name]["ms"] >= 0
    # The storage probe cleans up after itself.
    assert not any(p.is_file() for p in media_root.rglob("*"))


@pytest.mark.django_db
def test_readiness_answers_503_naming_broken_storage(client, settings, tmp_path):
    # A real failure: the storage root is a regular file, so nothing can be written below it.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    settings.MEDIA_ROOT = blocker

    response = client.get("/health/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
