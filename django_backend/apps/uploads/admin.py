"""Resumable uploads in the admin: read-only, for operators to see what is on its way."""

from django.contrib import admin
from django.http import HttpRequest

from .models import Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "progress", "state", "backend", "created_at", "expires_at"]
    list_filter = ["backend", "completed_at", "purged_at"]
    search_fields = ["name", "owner__username"]
    ordering = ["-created_at"]
    # Secrets and hashes stay out of the page: the id's hash, the lease, the sealed token
    # and the password's hash say nothing an operator needs.
    fields = [
        "name",
        "owner",
        "content_type",
        "length",
        "offset",
        "expires_in",
        "max_downloads",
        "backend",
        "storage_name",
        "staging_name",
        "created_at",
        "expires_at",
        "completed_at",
        "share_id",
        "purged_at",
    ]
    readonly_fields = fields

    @admin.display(description="received")
    def progress(self, upload: Upload) -> str:
        percent = 100 * upload.offset // upload.length if upload.length else 100
        return f"{upload.offset} of {upload.length} bytes ({percent}%)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        # Removing a row would strand its staged bytes until the orphan sweep; uploads end
        # through DELETE on their URL or by expiring.
        return False
