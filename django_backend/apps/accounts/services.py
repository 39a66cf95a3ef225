"""Accounts: API tokens. Sign-up, log-in and passwords are Django's own."""

from dataclasses import dataclass

from django.utils import timezone

from .models import API_TOKEN_PREFIX, ApiToken, User


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    key: str  # shown once, never stored


def api_token_create(*, user: User, name: str) -> CreatedToken:
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100] or "API token",
        key_hash=ApiToken.hash_key(key),
        prefix=key[:12],
    )
    return CreatedToken(token=token, key=key)


def api_token_revoke(*, user: User, token_id: int) -> bool:
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_token_authenticate(*, key: str) -> User | None:
    """The active user behind a token, or None."""
    if not key.startswith(API_TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=ApiToken.hash_key(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
