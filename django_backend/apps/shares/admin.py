"""The operators' view of shares, abuse reports and periodic jobs.

Everything here is read-only: a share changes only through the services (revoke, purge,
quarantine, release, resolve a report), which the actions call. The token hashes and the
password hash are never shown: they are not readable secrets, but nothing an operator needs.
"""

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field
from django.db.models import Model, Q
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import selectors
from .clients import OPERATOR
from .models import AbuseReport, JobRun, Share, ShareEvent
from .services import lifecycle, moderation
from .tokens import TOKEN_PATTERN, token_hash

_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokens_in(search_term: str) -> list[str]:
    """The tokens in a search: bare tokens, or pasted share or manage links.

    For a link (http://host/s/<token>, /m/<token>/revoke, /api/v1/shares/<token>/download)
    the token is the last path segment shaped like one.
    """
    tokens = []
    for word in search_term.split():
        try:
            path = urlsplit(word).path
        except ValueError:  # not a URL, e.g. an unbalanced "[" in a host
            continue
        segments = [segment for segment in path.split("/") if _TOKEN_RE.fullmatch(segment)]
        if segments:
            tokens.append(segments[-1])
    return tokens


def labelled(field_name: str, label: str) -> Callable[[admin.ModelAdmin, Model], str]:
    """A read-only field shown under the operators' word for it ("SHA-256", not "Sha256").

    The admin labels a model field with its verbose_name, and changing that would need a
    migration for nothing the database sees: this display function carries the label and
    formats the value as the admin formats the field itself.
    """

    @admin.display(description=label, ordering=field_name)
    def show(model_admin: admin.ModelAdmin, obj: Model) -> str:
        field = obj._meta.get_field(field_name)
        return display_for_field(
            getattr(obj, field_name), field, model_admin.get_empty_value_display()
        )

    show.__name__ = f"{field_name}_labelled"
    return show


def _when(moment) -> str:
    """A moment in two short lines (date, then time) for a narrow list column."""
    local = timezone.localtime(moment)
    return format_html(
        '<span class="share-when">{}<br>{}</span>',
        local.strftime("%Y-%m-%d"),
        local.strftime("%H:%M"),
    )


def _shares(count: int) -> str:
    return f"{count} share" if count == 1 else f"{count} shares"


def _reports(count: int) -> str:
    return f"{count} report" if count == 1 else f"{count} reports"


class ShareStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Share.State.choices

    def queryset(self, request, queryset):
        if self.value() in Share.State.values:
            return queryset.in_state(self.value())
        return queryset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ShareEventInline(ReadOnlyInline):
    model = ShareEvent
    verbose_name = "event"
    verbose_name_plural = "timeline"
    fields = readonly_fields = ["when", "what", "by", "bot", "client_hash"]

    when = labelled("at", "when")
    what = labelled("kind", "what happened")
    by = labelled("agent", "by")
    bot = labelled("is_bot", "a bot")
    client_hash = labelled("client", "client (keyed hash of the IP)")


class AbuseReportInline(ReadOnlyInline):
    model = AbuseReport
    fields = readonly_fields = ["reported", "reason", "note", "resolved", "resolution"]
    show_change_link = True

    reported = labelled("created_at", "reported")
    resolved = labelled("resolved_at", "resolved")


class ModerationMixin:
    """View-only pages whose actions need the model's change permission."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # no form saves anything: state changes go through the actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # rows go with the retention purge, which also deletes the bytes

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return admin.ModelAdmin.has_change_permission(self, request)

    def report(self, request: HttpRequest, done: int, message: str, skipped: str = "") -> None:
        self.message_user(
            request,
            f"{message} {skipped}".strip(),
            messages.SUCCESS if done else messages.WARNING,
        )


@admin.register(Share)
class ShareAdmin(ModerationMixin, admin.ModelAdmin):
    # Narrow columns, so that the list fits a 1280 px screen beside the admin's navigation
    # and the filters: the password is a tag beside the name, times are two short lines.
    list_display = [
        "name_display",
        "status_badges",
        "size_display",
        "downloads_display",
        "created_display",
        "expires_display",
    ]
    list_filter = [ShareStatusFilter, "created_at", "expires_at"]
    search_fields = ["name", "sha256"]
    search_help_text = "File name or SHA-256, or paste a share link, manage link or token."
    date_hierarchy = "created_at"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "file_name",
                    "status_badges",
                    "size_display",
                    "sha256_label",
                    "content_type_label",
                    "password_required",
                ]
            },
        ),
        ("Downloads", {"fields": ["downloads_display", "delivered_at"]}),
        (
            "Lifetime",
            {
                "fields": [
                    "created",
                    "expires",
                    "revoked",
                    "held_since",
                    "file_deleted",
                ]
            },
        ),
        ("Storage", {"fields": ["stored_as"]}),
    ]
    # Every field read-only, and the secrets' hashes not even in the form.
    exclude = ["share_token_hash", "manage_token_hash", "password"]
    readonly_fields = [
        "file_name",
        "status_badges",
        "size_display",
        "sha256_label",
        "content_type_label",
        "password_required",
        "downloads_display",
        "delivered_at",
        "created",
        "expires",
        "revoked",
        "held_since",
        "file_deleted",
        "stored_as",
    ]
    inlines = [ShareEventInline, AbuseReportInline]
    actions = ["revoke", "purge", "quarantine", "release"]

    class Media:
        css = {"all": ["shares/admin.css"]}

    file_name = labelled("name", "file name")
    sha256_label = labelled("sha256", "SHA-256")
    content_type_label = labelled("content_type", "content type")
    delivered_at = labelled("consumed_at", "delivered (last download) at")
    created = labelled("created_at", "created")
    expires = labelled("expires_at", "expires")
    revoked = labelled("revoked_at", "revoked")
    held_since = labelled("quarantined_at", "held for review since")
    file_deleted = labelled("purged_at", "file deleted")
    stored_as = labelled("storage_name", "name in storage")

    @admin.display(description="file", ordering="name")
    def name_display(self, share: Share) -> str:
        if share.password_required:
            return format_html('{} <span class="share-tag">password</span>', share.name)
        return share.name

    @admin.display(description="created", ordering="created_at")
    def created_display(self, share: Share) -> str:
        return _when(share.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires_display(self, share: Share) -> str:
        return _when(share.expires_at)

    @admin.display(description="status")
    def status_badges(self, share: Share) -> str:
        return format_html_join(
            " ",
            '<span class="share-status share-status-{}">{}</span>',
            ((state, Share.State(state).label) for state in share.states),
        )

    @admin.display(description="size", ordering="size")
    def size_display(self, share: Share) -> str:
        return filesizeformat(share.size)

    @admin.display(description="downloads", ordering="downloads")
    def downloads_display(self, share: Share) -> str:
        return f"{share.downloads} / {share.max_downloads}"

    @admin.display(description="password", boolean=True)
    def password_required(self, share: Share) -> bool:
        return share.password_required

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Tokens are looked up by their hash, as the database stores them; the token itself
        # goes no further than this function.
        hashes = [token_hash(token) for token in tokens_in(search_term)]
        if hashes:
            results |= queryset.filter(
                Q(share_token_hash__in=hashes) | Q(manage_token_hash__in=hashes)
            )
        return results, may_have_duplicates

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "share_stats": selectors.shares_stats(),
            "open_reports": AbuseReport.objects.filter(resolved_at__isnull=True).count(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(description="Revoke and delete bytes", permissions=["moderate"])
    def revoke(self, request, queryset) -> None:
        revoked = deleted = 0
        for share in queryset:
            after = moderation.share_remove(share_id=share.pk, actor=OPERATOR)
            revoked += share.revoked_at is None and after.revoked_at is not None
            deleted += share.purged_at is None and after.purged_at is not None
        message = f"Revoked {_shares(revoked)}; deleted the bytes of {_shares(deleted)}."
        self.report(request, revoked + deleted, message)

    @admin.action(description="Purge bytes now", permissions=["moderate"])
    def purge(self, request, queryset) -> None:
        selected = list(queryset.only("pk", "size"))
        purged = [
            share
            for share in selected
            if lifecycle.share_purge(share_id=share.pk, end_sessions=True)
        ]
        freed = filesizeformat(sum(share.size for share in purged))
        skipped = len(selected) - len(purged)
        self.report(
            request,
            len(purged),
            f"Deleted the bytes of {_shares(len(purged))} ({freed}).",
            f"Skipped {_shares(skipped)}: still active, held for review or already purged."
            if skipped
            else "",
        )

    @admin.action(description="Quarantine (hold for review)", permissions=["moderate"])
    def quarantine(self, request, queryset) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        held = sum(moderation.share_quarantine(share_id=pk) for pk in selected)
        skipped = len(selected) - held
        self.report(
            request,
            held,
            f"Quarantined {_shares(held)}: their links answer 410, their bytes are kept.",
            f"Skipped {_shares(skipped)}: already held or already purged." if skipped else "",
        )

    @admin.action(description="Release from quarantine", permissions=["moderate"])
    def release(self, request, queryset) -> None:
        selected = list(queryset.values_list("pk", flat=True))
        released = sum(moderation.share_release(share_id=pk) for pk in selected)
        skipped = len(selected) - released
        self.report(
            request,
            released,
            f"Released {_shares(released)} from quarantine.",
            f"Skipped {_shares(skipped)}: not held." if skipped else "",
        )


class OpenReportFilter(admin.SimpleListFilter):
    title = "open or resolved"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "open"), ("no", "resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(AbuseReport)
class AbuseReportAdmin(ModerationMixin, admin.ModelAdmin):
    # Open reports first: the model's Meta ordering.
    list_display = ["share_link", "reason", "created_at", "is_open", "resolution"]
    list_display_links = ["reason"]
    list_filter = [OpenReportFilter, "reason", "resolution"]
    list_select_related = ["share"]
    fields = readonly_fields = [
        "share_link",
        "reason",
        "note",
        "reported",
        "reporter_hash",
        "is_open",
        "resolved",
        "resolution",
    ]
    reported = labelled("created_at", "reported")
    reporter_hash = labelled("reporter", "reporter (keyed hash of the IP)")
    resolved = labelled("resolved_at", "resolved")
    actions = ["resolve_quarantined", "resolve_removed", "resolve_dismissed"]

    @admin.display(description="share", ordering="share__name")
    def share_link(self, report: AbuseReport) -> str:
        url = reverse("admin:shares_share_change", args=[report.share_id])
        return format_html('<a href="{}">{}</a>', url, report.share.name)

    @admin.display(description="open", boolean=True, ordering="resolved_at")
    def is_open(self, report: AbuseReport) -> bool:
        return report.is_open

    def resolve(self, request, queryset, resolution: str, done: str) -> None:
        # Only open reports: a resolved one keeps the decision it records.
        selected = list(queryset.values_list("pk", "resolved_at"))
        open_ids = [pk for pk, resolved_at in selected if resolved_at is None]
        for report_id in open_ids:
            moderation.report_resolve(report_id=report_id, resolution=resolution)
        skipped = len(selected) - len(open_ids)
        self.report(
            request,
            len(open_ids),
            f"Resolved {_reports(len(open_ids))}: {done}.",
            f"Skipped {_reports(skipped)} already resolved." if skipped else "",
        )

    @admin.action(description="Quarantine the share", permissions=["moderate"])
    def resolve_quarantined(self, request, queryset) -> None:
        self.resolve(
            request, queryset, AbuseReport.Resolution.QUARANTINED, "shares held for review"
        )

    @admin.action(description="Remove the share", permissions=["moderate"])
    def resolve_removed(self, request, queryset) -> None:
        self.resolve(
            request, queryset, AbuseReport.Resolution.REMOVED, "shares revoked and deleted"
        )

    @admin.action(description="Dismiss", permissions=["moderate"])
    def resolve_dismissed(self, request, queryset) -> None:
        self.resolve(request, queryset, AbuseReport.Resolution.DISMISSED, "no action taken")


@admin.register(JobRun)
class JobRunAdmin(ModerationMixin, admin.ModelAdmin):
    list_display = ["name", "finished_at", "summary"]
    fields = readonly_fields = ["name", "finished_at", "summary"]
    ordering = ["name"]
