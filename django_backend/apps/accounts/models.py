import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

API_TOKEN_PREFIX = "ots_"  # noqa: S105 - a prefix, not a secret


class CaseInsensitiveUserManager(UserManager):
    def get_by_natural_key(self, username: str) -> "User":
        # Log-in finds "Alice" when she types "alice".
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A sender with an account. Accounts are optional: anonymous uploads work too."""

    objects = CaseInsensitiveUserManager()

    class Meta:
        constraints = [
            # "Alice" and "alice" are one user; the database enforces it under races.
            models.UniqueConstraint(Lower("username"), name="username_unique_ci"),
        ]


class ApiToken(models.Model):
    """A secret that lets scripts act as a user: `Authorization: Bearer ots_...`.

    Only its SHA-256 is stored; the token is shown once, when it is created.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters, to tell tokens apart in lists ("ots_AbC1…").
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def new_key() -> str:
        return API_TOKEN_PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()
