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


@pytest.mark.parametrize(
    ("handler", "status", "text"),
    [
        ("bad_request", 400, "could not be understood"),
        ("permission_denied", 403, "not allowed"),
        ("page_not_found", 404, "nothing at this address"),
    ],
)
def test_error_pages_use_the_sites_template_and_json_under_the_api(rf, handler, status, text):
    from apps.common import views

    page = getattr(views, handler)(rf.get("/somewhere"), Exception("x"))
    api = getattr(views, handler)(rf.get("/api/v1/somewhere"), Exception("x"))

    assert page.status_code == status
    assert "OneTimeShare" in page.content.decode() and text in page.content.decode()
    assert api.status_code == status
    assert api.headers["Content-Type"] == "application/json"
    assert text in api.content.decode()


def test_the_500_page_uses_the_sites_template_and_json_under_the_api(rf):
    from apps.common import views

    page = views.server_error(rf.get("/somewhere"))
    api = views.server_error(rf.get("/api/v1/shares"))

    assert page.status_code == 500
    assert "Something went wrong on our side." in page.content.decode()
    assert "site.css" in page.content.decode()
    assert api.status_code == 500
    assert b'"code": "server_error"' in api.content
