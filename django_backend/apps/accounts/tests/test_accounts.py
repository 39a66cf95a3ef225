"""Accounts: sign-up, log-in, API tokens."""

import pytest
import time_machine
from django.contrib.auth.hashers import identify_hasher
from django.db import IntegrityError, transaction
from django.test import Client

from apps.accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("Alice", password=PASSWORD)


def test_sign_up_logs_in_and_hashes_the_password_with_argon2(client):
    response = client.post(
        "/account/signup/",
        {"username": "bob", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/account/shares/"
    assert identify_hasher(User.objects.get(username="bob").password).algorithm == "argon2"
    assert client.get("/account/shares/").status_code == 200


def test_usernames_are_unique_without_regard_to_case(client, alice):
    response = client.post(
        "/account/signup/",
        {"username": "ALICE", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 400
    assert "This username is taken." in response.content.decode()
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("aLiCe", password=PASSWORD)


def test_log_in_ignores_the_case_of_the_username(client, alice):
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert client.get("/account/shares/").status_code == 200


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/account/tokens/", "/account/tokens/"),
        ("https://evil.example/phish", "/account/shares/"),
        ("//evil.example/phish", "/account/shares/"),
    ],
)
def test_next_redirects_only_within_the_site(client, alice, next_url, expected):
    response = client.post(
        "/account/login/", {"username": "Alice", "password": PASSWORD, "next": next_url}
    )

    assert response.headers["Location"] == expected


def test_sign_up_and_log_in_forms_keep_csrf_protection(alice):
    client = Client(enforce_csrf_checks=True)

    assert (
        client.post("/account/login/", {"username": "Alice", "password": PASSWORD}).status_code
        == 403
    )
    signup = {"username": "carol", "password1": PASSWORD, "password2": PASSWORD}
    assert client.post("/account/signup/", signup).status_code == 403


# The limits count per minute window: time stands still in these tests, so that a window
# ending between two attempts cannot reset the count.
@time_machine.travel("2026-01-01T12:00:10Z", tick=False)
def test_log_in_attempts_are_rate_limited(client, alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "3/m"}
    for _ in range(3):
        assert (
            client.post("/account/login/", {"username": "Alice", "password": "no"}).status_code
            == 200
        )

    response = client.post("/account/login/", {"username": "Alice", "password": PASSWORD})

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


@time_machine.travel("2026-01-01T12:00:10Z", tick=False)
def test_the_admin_log_in_is_rate_limited_too(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "2/m"}
    for _ in range(2):
        attempt = client.post("/admin/login/", {"username": "x", "password": "y"})
        assert attempt.status_code == 200

    response = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
