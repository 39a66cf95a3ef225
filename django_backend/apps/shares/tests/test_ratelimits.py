"""Rate limits on uploads, downloads, wrong passwords and reports.

Small limits are set per test; counters live in the real cache (local memory, or the real
Redis below). Time is frozen with time_machine, so a limit window cannot roll over in the
middle of a test, and moved forward instead of waited for.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseBase
from django.test import Client

from apps.shares.models import AbuseReport, Share, ShareEvent
from tests.support import shares as support_shares

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, 0, tzinfo=UTC)
CONTENT = b"Minutes of the board meeting.\n"
PASSWORD = "correct horse battery staple"
OTHER_IP = "203.0.113.50"
REDIS_TEST_URL = "redis://127.0.0.1:6379/6"
# Nothing listens on port 1: every connection is refused at once.
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def fresh_counters():
    """Rate-limit counters live in the cache, which outlives a test: start each at zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def limits(settings) -> Callable[..., None]:
    """Set some of RATE_LIMITS for this test, e.g. limits(upload="2/m")."""

    def set_limits(**rates: str) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rates}

    return set_limits


def redis_cache(location: str) -> dict:
    """CACHES as core/settings.py builds it when REDIS_URL is set."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "ots",
            "OPTIONS": {
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }


@pytest.fixture
def redis_server(settings):
    """The real Redis as the cache, on a database of its own, empty before and after."""
    server = redis.Redis.from_url(REDIS_TEST_URL)
    server.flushdb()
    settings.CACHES = redis_cache(REDIS_TEST_URL)
    yield server
    server.flushdb()
    server.close()


@pytest.fixture
def unreachable_redis(settings) -> None:
    settings.CACHES = redis_cache(UNREACHABLE_REDIS_URL)


def frozen(moment: datetime = NOW):
    return time_machine.travel(moment, tick=False)


def api_upload(client: Client, **extra: object) -> HttpResponseBase:
    file = SimpleUploadedFile("notes.txt", CONTENT, content_type="text/plain")
    return client.post("/api/v1/shares", {"file": file}, **extra)


def put_upload(client: Client, **extra: object) -> HttpResponseBase:
    return client.put(
        "/api/v1/shares/notes.txt", CONTENT, content_type="application/octet-stream", **extra
    )


def form_upload(client: Client, **extra: object) -> HttpResponseBase:
    file = SimpleUploadedFile("notes.txt", CONTENT, content_type="text/plain")
    return client.post("/", {"file": file, "expires_in": "3600", "max_downloads": "1"}, **extra)


# (how to upload, the status of a successful upload, whether errors are JSON)
UPLOADS = [
    pytest.param(api_upload, 201, True, id="api-multipart"),
    pytest.param(put_upload, 201, True, id="api-put"),
    pytest.param(form_upload, 303, False, id="html-form"),
]


def api_download(client: Client, share_token: str, **extra: object) -> HttpResponseBase:
    return client.post(f"/api/v1/shares/{share_token}/download", **extra)


def page_download(client: Client, share_token: str, **extra: object) -> HttpResponseBase:
    return support_shares.page_download(client, f"/s/{share_token}", **extra)


DOWNLOADS = [
    pytest.param(api_download, True, id="api"),
    pytest.param(page_download, False, id="html"),
]


def body_of(response: HttpResponseBase) -> bytes:
    """The whole body; reading a streamed download to the end also closes it."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def assert_rate_limited(response: HttpResponseBase, *, json: bool) -> int:
    """The response is a 429 `rate_limited`, as JSON or as a page; its Retry-After."""
    assert response.status_code == 429, body_of(response)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert int(retry_after) >= 1
    if json:
        assert response.json()["error"]["code"] == "rate_limited"
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "Too many requests" in response.content.decode()
    return int(retry_after)


# --- uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize(("send", "created", "json"), UPLOADS)
def test_the_third_upload_in_a_minute_answers_429_rate_limited(client, limits, send, created, json):
    limits(upload="2/m")

    with frozen():
        statuses = [send(client).status_code for _ in range(2)]
        refused = send(client)

    assert statuses == [created, created]
    assert 1 <= assert_rate_limited(refused, json=json) <= 60
    assert Share.objects.count() == 2


@pytest.mark.parametrize(("send", "created", "json"), UPLOADS)
def test_another_client_ip_is_not_held_back_by_the_upload_limit(
    client, limits, send, created, json
):
    limits(upload="2/m")

    with frozen():
        for _ in range(2):
            assert send(client).status_code == created
        other = send(client, REMOTE_ADDR=OTHER_IP)
        refused = send(client)

    assert other.status_code == created
    assert_rate_limited(refused, json=json)
    assert Share.objects.count() == 3


def test_uploads_succeed_again_once_the_window_has_passed(client, limits):
    limits(upload="2/m")
    with frozen():
        for _ in range(2):
            assert api_upload(client).status_code == 201
        assert_rate_limited(api_upload(client), json=True)

    with frozen(NOW + timedelta(seconds=61)):
        assert api_upload(client).status_code == 201


def test_an_upload_after_waiting_retry_after_seconds_succeeds(client, limits):
    # A client that honours Retry-After (curl --retry does) must not be refused again.
    limits(upload="2/m")
    with frozen() as traveller:
        for _ in range(2):
            assert api_upload(client).status_code == 201
        retry_after = assert_rate_limited(api_upload(client), json=True)

        traveller.shift(retry_after)
        response = api_upload(client)

    assert response.status_code == 201, response.content


# --- downloads ----------------------------------------------------------------------------


@pytest.mark.parametrize(("send", "json"), DOWNLOADS)
def test_the_third_download_in_a_minute_answers_429_and_is_not_counted(
    client, limits, make_share, send, json
):
    limits(download="2/m")

    with frozen():
        created = make_share(CONTENT, max_downloads=5)
        bodies = [body_of(send(client, created.share_token)) for _ in range(2)]
        refused = send(client, created.share_token)
        other = send(client, created.share_token, REMOTE_ADDR=OTHER_IP)

    assert bodies == [CONTENT, CONTENT]
    assert_rate_limited(refused, json=json)
    assert other.status_code == 200
    assert body_of(other) == CONTENT
    assert Share.objects.get().downloads == 3


# --- wrong passwords ----------------------------------------------------------------------


def test_after_two_wrong_passwords_even_the_right_one_is_refused_for_that_share_only(
    client, limits, make_share
):
    limits(password="2/m")

    with frozen():
        locked = make_share(CONTENT, password=PASSWORD)
        other = make_share(CONTENT, password=PASSWORD)
        wrong = [
            page_download(client, locked.share_token, data={"password": "guess"}).status_code
            for _ in range(2)
        ]
        right_on_page = page_download(client, locked.share_token, data={"password": PASSWORD})
        right_by_api = api_download(client, locked.share_token, data={"password": PASSWORD})
        other_share = page_download(client, other.share_token, data={"password": PASSWORD})

    assert wrong == [403, 403]
    assert_rate_limited(right_on_page, json=False)
    assert_rate_limited(right_by_api, json=True)
    assert body_of(other_share) == CONTENT
    locked.share.refresh_from_db()
    assert locked.share.downloads == 0
    assert locked.share.events.filter(kind=ShareEvent.Kind.WRONG_PASSWORD).count() == 2


def test_the_right_password_works_again_once_the_window_has_passed(client, limits, make_share):
    limits(password="2/m")
    with frozen():
        locked = make_share(CONTENT, password=PASSWORD)
        for _ in range(2):
            response = api_download(client, locked.share_token, data={"password": "guess"})
            assert response.status_code == 403
        assert_rate_limited(
            api_download(client, locked.share_token, data={"password": PASSWORD}), json=True
        )

    with frozen(NOW + timedelta(seconds=61)):
        response = api_download(client, locked.share_token, data={"password": PASSWORD})

    assert response.status_code == 200
    assert body_of(response) == CONTENT


# --- reports ------------------------------------------------------------------------------


def test_the_third_report_in_a_minute_answers_429(client, limits, make_share):
    limits(report="2/m")

    with frozen():
        created = make_share(CONTENT)
        url = f"/s/{created.share_token}/report"
        statuses = [client.post(url, {"reason": "malware"}).status_code for _ in range(2)]
        refused = client.post(url, {"reason": "malware"})
        other = client.post(url, {"reason": "malware"}, REMOTE_ADDR=OTHER_IP)

    assert statuses == [200, 200]
    assert_rate_limited(refused, json=False)
    assert other.status_code == 200
    assert AbuseReport.objects.count() == 3


# --- where the counters live --------------------------------------------------------------


def test_with_redis_as_the_cache_the_counters_live_in_redis_and_limit(client, limits, redis_server):
    limits(upload="2/m")

    with frozen():
        for _ in range(2):
            assert api_upload(client).status_code == 201
        refused = api_upload(client)
        other = api_upload(client, REMOTE_ADDR=OTHER_IP)

    assert_rate_limited(refused, json=True)
    assert other.status_code == 201
    # One counter per client IP, in Redis rather than in this process.
    assert redis_server.dbsize() == 2


def test_with_redis_unreachable_requests_are_not_limited_and_succeed(
    client, limits, make_share, unreachable_redis
):
    limits(upload="1/m", download="1/m", report="1/m")

    with frozen():
        uploads = [api_upload(client).status_code for _ in range(3)]
        created = make_share(CONTENT, max_downloads=3)
        url = f"/s/{created.share_token}/report"
        reports = [client.post(url, {"reason": "other"}).status_code for _ in range(3)]
        downloads = [body_of(api_download(client, created.share_token)) for _ in range(3)]

    assert uploads == [201, 201, 201]
    assert reports == [200, 200, 200]
    assert downloads == [CONTENT] * 3
    assert Share.objects.count() == 4
