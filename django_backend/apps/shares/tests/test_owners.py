"""Shares of senders with an account: My shares, uploads by API token or session, quotas."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from apps.shares.models import Share
from tests.support.shares import page_download

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


# --- an owner's page of one share, by the session -----------------------------------------


def owner_upload(client: Client, owner: User, name: str = "report.pdf") -> dict:
    """A share of `owner`, made through the API with their token; the API's answer."""
    created = upload(client, name, b"owned", **bearer(api_token_create(user=owner, name="t").key))
    assert created.status_code == 201
    return created.json()


def test_my_shares_links_each_share_to_its_owner_page_and_shows_local_times(client, alice):
    created = owner_upload(client, alice)
    share = Share.objects.get()
    client.force_login(alice)

    html = client.get("/account/shares/").content.decode()

    assert f'<a href="/account/shares/{share.pk}/">report.pdf</a>' in html
    # Times go out in UTC and local-times.js shows them in the viewer's zone.
    assert re.search(r'<time datetime="[^"]+" data-local data-style="date">', html)
    assert "/static/shares/local-times.js" in html
    assert created["token"] not in html


def test_the_owner_page_shows_status_timeline_and_revoke_but_no_link(client, alice):
    created = owner_upload(client, alice)
    share = Share.objects.get()
    client.get(f"/s/{created['token']}")  # the recipient had a look
    client.force_login(alice)

    response = client.get(f"/account/shares/{share.pk}/")

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    html = response.content.decode()
    assert "report.pdf" in html
    assert 'id="next-step"' in html and "This link works once" in html
    assert "Page opened" in html  # the timeline
    assert f'action="/account/shares/{share.pk}/revoke"' in html
    assert "csrfmiddlewaretoken" in html
    assert "can't be shown again" in html
    for secret in (created["token"], created["manage_token"], "/s/", "/m/"):
        assert secret not in html


def test_the_owner_page_shows_a_delivered_share_as_delivered_without_revoke(client, alice):
    created = owner_upload(client, alice)
    b"".join(page_download(client, f"/s/{created['token']}").streaming_content)
    client.force_login(alice)

    html = client.get(f"/account/shares/{Share.objects.get().pk}/").content.decode()

    assert '<span class="status status-consumed">delivered</span>' in html
    assert "Delivered: the file was downloaded once" in html
    assert "revoke-form" not in html


def test_someone_elses_share_is_not_found_and_a_visitor_must_log_in(client, alice):
    owner_upload(client, alice)
    share = Share.objects.get()
    User.objects.create_user("mallory", password=PASSWORD)

    assert client.get(f"/account/shares/{share.pk}/").status_code == 302  # to log in
    client.login(username="mallory", password=PASSWORD)
    refused = client.get(f"/account/shares/{share.pk}/")

    assert refused.status_code == 404
    assert "report.pdf" not in refused.content.decode()


def test_revoke_from_the_owner_page_needs_the_csrf_token_of_the_session(alice):
    owner_upload(Client(), alice)
    share = Share.objects.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get(f"/account/shares/{share.pk}/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    forged = client.post(f"/account/shares/{share.pk}/revoke")
    assert forged.status_code == 403
    assert Share.objects.get().revoked_at is None

    revoked = client.post(f"/account/shares/{share.pk}/revoke", {"csrfmiddlewaretoken": csrf})
    assert revoked.status_code == 302
    assert Share.objects.get().revoked_at is not None
    html = client.get(f"/account/shares/{share.pk}/").content.decode()
    assert '<span class="status status-revoked">revoked</span>' in html
    assert "revoke-form" not in html


def test_a_new_api_token_is_good_news_with_a_copy_button(client, alice):
    client.force_login(alice)

    html = client.post("/account/tokens/", {"name": "backup script"}).content.decode()

    box = html[html.index('id="token-created"') - 40 : html.index("</textarea>")]
    assert 'class="notice-info token-created"' in box
    assert 'class="notice' + '"' not in box  # not the error style
    assert 'data-copy="new-token"' in html
    assert "/static/shares/copy.js" in html
    revoked = client.post(f"/account/tokens/{ApiToken.objects.get().pk}/revoke", follow=True)
    assert '<p class="notice-info" role="status">The token is revoked.</p>' in (
        revoked.content.decode()
    )
