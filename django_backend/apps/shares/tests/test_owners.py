"""Shares of senders with an account: My shares, uploads by API token or session, quotas."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from apps.shares.models import Share

pytestmark = pytest.mark.django_db
PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("Alice", password=PASSWORD)


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def upload(client: Client, name: str = "f.txt", content: bytes = b"data", **extra):
    return client.post("/api/v1/shares", {"file": SimpleUploadedFile(name, content)}, **extra)


def test_my_shares_lists_only_mine_newest_first_with_a_cursor(client, alice):
    other = User.objects.create_user("mallory", password=PASSWORD)
    key = api_token_create(user=alice, name="script").key
    for number in range(5):
        assert upload(client, f"mine-{number}.txt", **bearer(key)).status_code == 201
    upload(client, "theirs.txt", **bearer(api_token_create(user=other, name="x").key))
    client.force_login(alice)

    first = client.get("/account/shares/?limit=2")
    html = first.content.decode()
    assert html.index("mine-4.txt") < html.index("mine-3.txt")
    assert "mine-2.txt" not in html and "theirs.txt" not in html
    after = first.context["page"].next_cursor
    second = client.get(f"/account/shares/?limit=2&after={after}").content.decode()
    assert "mine-2.txt" in second and "mine-1.txt" in second and "mine-4.txt" not in second


def test_i_can_revoke_my_share_but_not_someone_elses(client, alice):
    mine = upload(client, "mine.txt", **bearer(api_token_create(user=alice, name="a").key))
    other = User.objects.create_user("mallory", password=PASSWORD)
    theirs = upload(client, "theirs.txt", **bearer(api_token_create(user=other, name="m").key))
    client.force_login(alice)
    mine_share = Share.objects.get(name="mine.txt")
    theirs_share = Share.objects.get(name="theirs.txt")

    client.post(f"/account/shares/{mine_share.pk}/revoke")
    client.post(f"/account/shares/{theirs_share.pk}/revoke")

    assert client.get(f"/s/{mine.json()['token']}").status_code == 410
    assert client.get(f"/s/{theirs.json()['token']}").status_code == 200


def test_api_token_is_shown_once_stored_hashed_and_revocable(client, alice):
    client.force_login(alice)

    page = client.post("/account/tokens/", {"name": "backup script"})

    key = page.context["created"].key
    assert key.startswith("ots_")
    assert page.headers["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    assert token.key_hash != key and key not in token.prefix * 2
    assert key not in client.get("/account/tokens/").content.decode()
    client = Client()
    assert upload(client, **bearer(key)).status_code == 201
    assert Share.objects.get().owner == alice

    owner_client = Client()
    owner_client.force_login(alice)
    owner_client.post(f"/account/tokens/{token.pk}/revoke")
    refused = upload(client, **bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_api_lists_the_callers_shares_newest_first_by_cursor(client, alice):
    key = api_token_create(user=alice, name="s").key
    for number in range(3):
        upload(client, f"f{number}.txt", **bearer(key))
    upload(client, "anonymous.txt")

    first = client.get("/api/v1/shares?limit=2", **bearer(key)).json()
    second = client.get(f"/api/v1/shares?limit=2&after={first['next']}", **bearer(key)).json()

    assert [s["name"] for s in first["shares"]] == ["f2.txt", "f1.txt"]
    assert [s["name"] for s in second["shares"]] == ["f0.txt"]
    assert second["next"] is None
    assert "token" not in first["shares"][0]


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer ots_not-a-real-token"}, {"HTTP_AUTHORIZATION": "Basic x"}],
)
def test_api_listing_needs_a_valid_token(client, headers):
    response = client.get("/api/v1/shares", **headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_bad_cursor_is_a_clear_400(client, alice):
    key = api_token_create(user=alice, name="s").key

    response = client.get("/api/v1/shares?after=not-a-cursor", **bearer(key))

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("after:")


def test_anonymous_uploads_can_be_turned_off(client, alice, settings):
    settings.ALLOW_ANONYMOUS_UPLOADS = False

    assert upload(client).status_code == 401
    assert client.put("/api/v1/shares/x.txt", b"x", content_type="text/plain").status_code == 401
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/account/login/")
    assert upload(client, **bearer(api_token_create(user=alice, name="s").key)).status_code == 201


def test_over_the_quota_an_upload_is_refused_with_413_naming_the_quota(client, alice, settings):
    settings.USER_QUOTA_BYTES = 10
    key = api_token_create(user=alice, name="s").key
    assert upload(client, content=b"123456", **bearer(key)).status_code == 201

    response = upload(client, content=b"123456", **bearer(key))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "quota of 10" in response.json()["error"]["message"]
    assert Share.objects.count() == 1
    # An anonymous upload has no quota.
    assert upload(client, content=b"123456").status_code == 201


def test_a_logged_in_browser_uploads_through_the_api_only_with_its_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")
    csrf = client.cookies["csrftoken"].value

    refused = client.post("/api/v1/shares", {"file": SimpleUploadedFile("a.txt", b"a")})
    accepted = client.post(
        "/api/v1/shares",
        {"csrfmiddlewaretoken": csrf, "file": SimpleUploadedFile("b.txt", b"b")},
    )

    assert refused.status_code == 403
    assert accepted.status_code == 201
    assert Share.objects.get().owner == alice


def test_the_upload_form_records_the_logged_in_owner(client, alice):
    client.force_login(alice)

    client.post(
        "/",
        {"file": SimpleUploadedFile("form.txt", b"x"), "expires_in": "86400", "max_downloads": "1"},
    )

    assert Share.objects.get().owner == alice


def test_share_pages_link_to_a_log_out_page_instead_of_holding_the_form(client, alice):
    # Under Referrer-Policy: no-referrer a browser posts forms with `Origin: null`, which
    # fails the CSRF check of a session form: those pages link to one that can hold it.
    client.force_login(alice)
    created = upload(client)
    manage = client.get(created.json()["manage_url"].removeprefix("http://testserver"))
    upload_page = client.get("/")

    assert 'href="/account/logout/"' in manage.content.decode()
    assert 'action="/account/logout/"' not in manage.content.decode()
    assert 'action="/account/logout/"' in upload_page.content.decode()
    logout_page = client.get("/account/logout/")
    assert logout_page.status_code == 200
    assert "csrfmiddlewaretoken" in logout_page.content.decode()
    assert client.post("/account/logout/").status_code == 302
    assert client.get("/account/shares/").status_code == 302
