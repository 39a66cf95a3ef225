from django.contrib import admin
from django.template.defaultfilters import filesizeformat

from .models import Share


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status_display",
        "size_display",
        "downloads",
        "max_downloads",
        "created_at",
        "expires_at",
    ]
    list_filter = ["created_at"]
    search_fields = ["name", "sha256"]
    date_hierarchy = "created_at"
    # The token hashes are not secrets, but nothing an operator needs either.
    exclude = ["share_token_hash", "manage_token_hash", "password"]
    readonly_fields = [
        "name",
        "size",
        "sha256",
        "content_type",
        "storage_name",
        "max_downloads",
        "downloads",
        "created_at",
        "expires_at",
        "consumed_at",
        "revoked_at",
        "purged_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # shares come from uploads

    @admin.display(description="status")
    def status_display(self, share: Share) -> str:
        return share.status

    @admin.display(description="size", ordering="size")
    def size_display(self, share: Share) -> str:
        return filesizeformat(share.size)
