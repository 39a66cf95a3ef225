"""A resumable upload (tus) while its bytes arrive, until it becomes a share.

Everything an upload needs to go on lives here and in storage, never in a process: any web
process can take the next PATCH, after a network cut, a reload or a restart.
"""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class UploadQuerySet(models.QuerySet):
    """The one definition of each state of an upload, in SQL (Upload.state mirrors it)."""

    @staticmethod
    def condition(state: str, now: datetime | None = None) -> Q:
        now = now or timezone.now()
        return {
            Upload.State.UPLOADING: Q(
                completed_at__isnull=True, purged_at__isnull=True, expires_at__gt=now
            ),
            Upload.State.COMPLETE: Q(
                completed_at__isnull=False, purged_at__isnull=True, expires_at__gt=now
            ),
            # Its session ran out: unfinished bytes or unclaimed links wait for the job.
            Upload.State.EXPIRED: Q(purged_at__isnull=True, expires_at__lte=now),
            Upload.State.ENDED: Q(purged_at__isnull=False),
        }[state]

    def in_state(self, state: str, now: datetime | None = None) -> "UploadQuerySet":
        return self.filter(self.condition(state, now))

    def uploading(self) -> "UploadQuerySet":
        return self.in_state(Upload.State.UPLOADING)

    def expired(self, now: datetime | None = None) -> "UploadQuerySet":
        return self.in_state(Upload.State.EXPIRED, now)


class Upload(models.Model):
    class State(models.TextChoices):
        UPLOADING = "uploading", "uploading"
        # Every byte arrived and the share exists.
        COMPLETE = "complete", "complete"
        EXPIRED = "expired", "expired"
        # Expired or finished long ago: its bytes and secrets are gone, the row answers 410.
        ENDED = "ended", "ended"

    class Backend(models.TextChoices):
        LOCAL = "local", "local disk"
        S3 = "s3", "S3 multipart upload"

    # SHA-256 of the upload id in the URL; the id itself is never stored.
    id_hash = models.CharField(max_length=64, unique=True)
    # The sender, when logged in (or using an API token); anonymous uploads have none.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resumable_uploads",
    )
    length = models.PositiveBigIntegerField(help_text="Upload-Length: the whole file, in bytes.")
    offset = models.PositiveBigIntegerField(
        default=0, help_text="Bytes received and durably stored."
    )
    # The share's options, from Upload-Metadata, validated at creation.
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, blank=True)
    expires_in = models.PositiveIntegerField()
    max_downloads = models.PositiveSmallIntegerField()
    password = models.CharField(max_length=255, blank=True, help_text="Argon2 hash, or empty.")

    backend = models.CharField(max_length=8, choices=Backend.choices)
    # Where the share's bytes will be (a random name under shares/), chosen at creation: an
    # S3 multipart upload is created for its final key.
    storage_name = models.CharField(max_length=255, unique=True)
    # Local: the file the parts are appended to. S3: the object holding the bytes received
    # after the last whole part (at most one part long).
    staging_name = models.CharField(max_length=255, unique=True)
    s3_upload_id = models.CharField(max_length=1024, blank=True)
    part_size = models.PositiveBigIntegerField(default=0)
    # S3: how many bytes of the staging object count (the object may hold more, written by a
    # request that died before it recorded them).
    tail_size = models.PositiveBigIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    # Moved on by every write: an upload left alone for UPLOAD_SESSION_TTL is expired.
    expires_at = models.DateTimeField()
    # The lease of the one request writing now (see services.lease_take).
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    completed_at = models.DateTimeField(null=True, blank=True)
    # The share made of it. Not a foreign key: the shares app deletes its rows past
    # retention with plain SQL and knows nothing of uploads.
    share_id = models.BigIntegerField(null=True, blank=True)
    # The share's manage token, encrypted with a key derived from the upload id (which the
    # database does not hold), until GET has returned it once.
    sealed_manage_token = models.CharField(max_length=128, blank=True)
    purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When its staged bytes and secrets were removed."
    )

    objects = UploadQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(offset__lte=models.F("length")), name="upload_offset_within_length"
            )
        ]
        indexes = [
            # The expiry job: sessions past expires_at that still hold something.
            models.Index(
                fields=["expires_at"],
                name="upload_unpurged_expiry",
                condition=Q(purged_at__isnull=True),
            ),
            # The same job deletes the rows of ended uploads after another TTL.
            models.Index(
                fields=["purged_at"], name="upload_purged_at", condition=Q(purged_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.offset}/{self.length}, {self.state})"

    @property
    def state(self) -> str:
        if self.purged_at is not None:
            return self.State.ENDED
        if timezone.now() >= self.expires_at:
            return self.State.EXPIRED
        if self.completed_at is not None:
            return self.State.COMPLETE
        return self.State.UPLOADING


class UploadPart(models.Model):
    """One part of an S3 multipart upload, recorded once S3 has it."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="parts")
    number = models.PositiveIntegerField()
    etag = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "number"], name="upload_part_number")
        ]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"part {self.number} ({self.size} bytes)"
