from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext_lazy as _

from .models import AbuseReport

EXPIRY_PRESETS = [300, 3600, 86400, 7 * 86400]


def _describe_seconds(seconds: int) -> str:
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=seconds), now)


def expiry_choices() -> list[tuple[int, str]]:
    """The presets that lie within the server's limits, plus the default."""
    seconds = {s for s in EXPIRY_PRESETS if settings.MIN_EXPIRES_IN <= s <= settings.MAX_EXPIRES_IN}
    seconds.add(settings.DEFAULT_EXPIRES_IN)
    return [(s, _describe_seconds(s)) for s in sorted(seconds)]


class ShareForm(forms.Form):
    """The upload page. Ranges are checked again by the service (the API shares them)."""

    file = forms.FileField(
        label=_("File"),
        error_messages={
            "required": _("Choose a file to share."),
            "empty": _("The file is empty (0 bytes): there is nothing to share."),
        },
    )
    expires_in = forms.TypedChoiceField(coerce=int, label=_("Expires after"))
    max_downloads = forms.IntegerField(
        min_value=1,
        max_value=settings.MAX_DOWNLOADS_LIMIT,
        initial=1,
        label=_("Downloads allowed"),
    )
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Optional. The recipient must type it before downloading."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expires_in"].choices = expiry_choices()
        self.fields["expires_in"].initial = settings.DEFAULT_EXPIRES_IN


class DownloadForm(forms.Form):
    password = forms.CharField(required=False, strip=False, widget=forms.PasswordInput)


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=AbuseReport.Reason.choices, widget=forms.RadioSelect, label=_("What is wrong?")
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        label=_("Anything the operators should know (optional)"),
    )
