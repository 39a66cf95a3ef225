from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class ShareQuerySet(models.QuerySet):
    """Status filters. Status is derived from timestamps and counts, never stored."""

    def revoked(self) -> "ShareQuerySet":
        return self.filter(revoked_at__isnull=False)

    def consumed(self) -> "ShareQuerySet":
        return self.filter(revoked_at__isnull=True, downloads__gte=F("max_downloads"))

    def expired(self) -> "ShareQuerySet":
        return self.filter(
            revoked_at__isnull=True,
            downloads__lt=F("max_downloads"),
            expires_at__lte=timezone.now(),
        )

    def active(self) -> "ShareQuerySet":
        return self.filter(
            revoked_at__isnull=True,
            downloads__lt=F("max_downloads"),
            expires_at__gt=timezone.now(),
            purged_at__isnull=True,
        )

    def ended(self) -> "ShareQuerySet":
        """Consumed, expired or revoked: no download will ever be served again."""
        return self.filter(
            Q(revoked_at__isnull=False)
            | Q(downloads__gte=F("max_downloads"))
            | Q(expires_at__lte=timezone.now())
        )

    def purgeable(self) -> "ShareQuerySet":
        """Ended shares whose bytes are still in storage."""
        return self.ended().filter(purged_at__isnull=True)


class Share(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        CONSUMED = "consumed"
        EXPIRED = "expired"
        REVOKED = "revoked"

    # SHA-256 hex digests; the tokens themselves are never stored.
    share_token_hash = models.CharField(max_length=64, unique=True)
    manage_token_hash = models.CharField(max_length=64, unique=True)
    # Random name in storage, never derived from the user's file name.
    storage_name = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, help_text="The file name the sender uploaded.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    password = models.CharField(max_length=255, blank=True, help_text="Argon2 hash, or empty.")
    max_downloads = models.PositiveSmallIntegerField(default=1)
    downloads = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When the bytes were deleted."
    )

    objects = ShareQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The claim's conditional UPDATE relies on this never being exceeded.
            models.CheckConstraint(
                condition=Q(downloads__lte=F("max_downloads")), name="downloads_within_max"
            ),
            models.CheckConstraint(
                condition=Q(max_downloads__gte=1) & Q(max_downloads__lte=100),
                name="max_downloads_range",
            ),
        ]
        indexes = [
            # purge_shares scans for ended shares that still hold bytes.
            models.Index(
                fields=["expires_at"],
                name="share_unpurged_expiry",
                condition=Q(purged_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.downloads >= self.max_downloads:
            return self.Status.CONSUMED
        if timezone.now() >= self.expires_at:
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def is_available(self) -> bool:
        """Whether a download could be served now (active and the bytes still stored)."""
        return self.status == self.Status.ACTIVE and self.purged_at is None

    @property
    def downloads_remaining(self) -> int:
        if not self.is_available:
            return 0
        return self.max_downloads - self.downloads

    @property
    def password_required(self) -> bool:
        return bool(self.password)
