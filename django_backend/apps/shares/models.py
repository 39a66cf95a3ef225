from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .clients import agent_label


class ShareQuerySet(models.QuerySet):
    """Status filters. Status is derived from timestamps and counts, never stored.

    `condition()` is the one definition of each status in SQL; Share.status and
    Share.states are its mirror in Python for a loaded row (a test holds them together).
    """

    @staticmethod
    def condition(state: str, now: datetime | None = None) -> Q:
        """The filter for one of Share.State's values."""
        now = now or timezone.now()
        live = Q(revoked_at__isnull=True, downloads__lt=F("max_downloads"))
        return {
            Share.State.REVOKED: Q(revoked_at__isnull=False),
            Share.State.CONSUMED: Q(revoked_at__isnull=True, downloads__gte=F("max_downloads")),
            Share.State.EXPIRED: live & Q(expires_at__lte=now),
            # "Active" here means downloadable now: neither purged nor held for review.
            Share.State.ACTIVE: live
            & Q(expires_at__gt=now, purged_at__isnull=True, quarantined_at__isnull=True),
            Share.State.QUARANTINED: Q(quarantined_at__isnull=False),
            Share.State.PURGED: Q(purged_at__isnull=False),
        }[state]

    def in_state(self, state: str) -> "ShareQuerySet":
        return self.filter(self.condition(state))

    def revoked(self) -> "ShareQuerySet":
        return self.in_state(Share.State.REVOKED)

    def consumed(self) -> "ShareQuerySet":
        return self.in_state(Share.State.CONSUMED)

    def expired(self) -> "ShareQuerySet":
        return self.in_state(Share.State.EXPIRED)

    def active(self) -> "ShareQuerySet":
        """Shares a recipient could download now."""
        return self.in_state(Share.State.ACTIVE)

    def quarantined(self) -> "ShareQuerySet":
        return self.in_state(Share.State.QUARANTINED)

    def purged(self) -> "ShareQuerySet":
        """Shares whose bytes have been deleted."""
        return self.in_state(Share.State.PURGED)

    def ended(self) -> "ShareQuerySet":
        """Consumed, expired or revoked: no download will ever be served again."""
        return self.filter(
            Q(revoked_at__isnull=False)
            | Q(downloads__gte=F("max_downloads"))
            | Q(expires_at__lte=timezone.now())
        )

    def purgeable(self) -> "ShareQuerySet":
        """Ended shares whose bytes are still in storage, unless kept for review."""
        return self.ended().filter(purged_at__isnull=True, quarantined_at__isnull=True)

    def stored(self) -> "ShareQuerySet":
        """Shares whose bytes are in storage."""
        return self.filter(purged_at__isnull=True)


class Share(models.Model):
    class Status(models.TextChoices):
        """The lifecycle status, as the API reports it, with the label people read (in
        their language: the API reports the value)."""

        ACTIVE = "active", pgettext_lazy("status of a shared file", "active")
        # Every allowed download was taken: the happy ending.
        CONSUMED = "consumed", pgettext_lazy("status of a shared file", "delivered")
        EXPIRED = "expired", pgettext_lazy("status of a shared file", "expired")
        REVOKED = "revoked", pgettext_lazy("status of a shared file", "revoked")

    class State(models.TextChoices):
        """What an operator can filter on: the statuses plus the two conditions of the
        bytes (held for review, deleted), which combine with any status."""

        ACTIVE = "active", pgettext_lazy("status of a shared file", "active")
        CONSUMED = "consumed", pgettext_lazy("status of a shared file", "delivered")
        EXPIRED = "expired", pgettext_lazy("status of a shared file", "expired")
        REVOKED = "revoked", pgettext_lazy("status of a shared file", "revoked")
        QUARANTINED = "quarantined", pgettext_lazy("status of a shared file", "held for review")
        PURGED = "purged", pgettext_lazy("status of a shared file", "file deleted")

    # The sender, when logged in (or using an API token); anonymous shares have none.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shares",
    )
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
    quarantined_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Held for review by an operator: the link answers 410, the bytes are kept.",
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
            # "My shares" and GET /api/v1/shares: one owner's shares, newest first, by cursor.
            models.Index(fields=["owner", "-created_at", "-id"], name="share_owner_newest"),
            # purge_shares scans for ended shares that still hold bytes.
            models.Index(
                fields=["expires_at"],
                name="share_unpurged_expiry",
                condition=Q(purged_at__isnull=True),
            ),
            # purge_shares deletes rows purged longer ago than SHARE_RETENTION_DAYS
            # (`purged_at < cutoff`, in batches, oldest first): every minute, it reads the
            # few rows past the cutoff instead of scanning every purged row kept for the
            # audit trail. Partial: rows still holding bytes are never past retention.
            models.Index(
                fields=["purged_at"],
                name="share_purged_at",
                condition=Q(purged_at__isnull=False),
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
    def status_label(self) -> str:
        return self.Status(self.status).label

    @property
    def states(self) -> list[str]:
        """Every State whose filter (ShareQuerySet.condition) matches this row."""
        states = []
        # The filter's "active" means downloadable now, which excludes held and purged
        # shares; their lifecycle status alone would read "active" and mislead.
        if self.status != self.Status.ACTIVE or self.is_available:
            states.append(self.status)
        if self.quarantined_at is not None:
            states.append(self.State.QUARANTINED)
        if self.purged_at is not None:
            states.append(self.State.PURGED)
        return states

    @property
    def is_available(self) -> bool:
        """Whether a download could be served now: active, stored, not held for review."""
        return (
            self.status == self.Status.ACTIVE
            and self.purged_at is None
            and self.quarantined_at is None
        )

    @property
    def downloads_remaining(self) -> int:
        if not self.is_available:
            return 0
        return self.max_downloads - self.downloads

    @property
    def password_required(self) -> bool:
        return bool(self.password)


class ShareEvent(models.Model):
    """One thing that happened to a share: the audit trail its sender sees."""

    class Kind(models.TextChoices):
        """What happened; the label is a line of the sender's timeline, capitalized there."""

        CREATED = "created", pgettext_lazy("timeline event", "Created")
        OPENED = "opened", pgettext_lazy("timeline event", "page opened")
        DOWNLOAD_STARTED = "download_started", pgettext_lazy("timeline event", "download started")
        DOWNLOAD_COMPLETED = (
            "download_completed",
            pgettext_lazy("timeline event", "download completed"),
        )
        DOWNLOAD_BROKEN_OFF = (
            "download_broken_off",
            pgettext_lazy("timeline event", "download broken off"),
        )
        DOWNLOAD_WINDOW_CLOSED = (
            "download_window_closed",
            pgettext_lazy("timeline event", "download window closed before every byte was served"),
        )
        WRONG_PASSWORD = "wrong_password", pgettext_lazy("timeline event", "wrong password")
        REVOKED = "revoked", pgettext_lazy("timeline event", "Revoked")
        EXPIRED = "expired", pgettext_lazy("timeline event", "Expired")
        PURGED = "purged", pgettext_lazy("timeline event", "file deleted")
        REPORTED = "reported", pgettext_lazy("timeline event", "Reported")
        QUARANTINED = "quarantined", pgettext_lazy("timeline event", "held for review")
        RELEASED = "released", pgettext_lazy("timeline event", "released after review")

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    # Who, as far as the User-Agent tells: "Slack link preview", "browser", "API client".
    agent = models.CharField(max_length=64, blank=True)
    is_bot = models.BooleanField(default=False)
    # A keyed hash of the client's IP address: tells clients apart, reveals no address.
    client = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # The manage page reads one share's timeline in order.
            models.Index(fields=["share", "at"], name="shareevent_share_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def agent_label(self) -> str:
        """Who did it, as the timeline says it in the reader's language."""
        return agent_label(self.agent)


class DownloadSession(models.Model):
    """The window a claim opens for the one who took the download: the file may be fetched
    again, in ranges, until every byte was served once, within DOWNLOAD_SESSION_TTL and
    about twice the file's size. The token is stored hashed, like the share's."""

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="download_sessions")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Bytes sent or being sent: each request reserves its range first, then settles.
    bytes_served = models.PositiveBigIntegerField(default=0)
    # The byte ranges sent at least once, merged: [[start, end), ...].
    served_ranges = models.JSONField(default=list)
    # The requests being served now, {lease id: start time}; a lease left by a process
    # that died ends with the session.
    open_requests = models.JSONField(default=dict)
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who claimed it, for the timeline entries written when it ends.
    agent = models.CharField(max_length=64, blank=True)
    client = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [
            # The purge job ends the sessions whose window has passed.
            models.Index(
                fields=["expires_at"],
                name="downloadsession_live_expiry",
                condition=Q(ended_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Download session of share {self.share_id}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None and timezone.now() < self.expires_at


class AbuseReport(models.Model):
    class Reason(models.TextChoices):
        MALWARE = "malware", _("Malware or phishing")
        ILLEGAL = "illegal", _("Illegal content")
        COPYRIGHT = "copyright", _("Copyright infringement")
        OTHER = "other", _("Something else")

    class Resolution(models.TextChoices):
        QUARANTINED = "quarantined", pgettext_lazy("shared file", "Share held for review")
        REMOVED = "removed", pgettext_lazy("shared file", "Share revoked and deleted")
        DISMISSED = "dismissed", _("No action needed")

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    reporter = models.CharField(max_length=16, blank=True, help_text="Keyed hash of the IP.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)

    class Meta:
        # Open reports first, newest first.
        ordering = [F("resolved_at").desc(nulls_first=True), "-created_at"]
        indexes = [
            # The admin lists open reports first.
            models.Index(fields=["resolved_at", "created_at"], name="abusereport_open"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on share {self.share_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class JobRun(models.Model):
    """When each periodic job last finished, for the readiness check.

    Kept in the database rather than the cache: with the embedded default, the worker and
    the web server do not share a cache.
    """

    name = models.CharField(max_length=64, unique=True)
    finished_at = models.DateTimeField()
    summary = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.name} at {self.finished_at}"
