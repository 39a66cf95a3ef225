"""`{{ moment|local_time:"date" }}`: a <time> element that local-times.js shows in the
viewer's time zone, as a value that a translated sentence can hold in one placeholder."""

from datetime import datetime

from django import template
from django.template.defaultfilters import date as format_date
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# What the page shows until the script runs (and without it): UTC, written out in full.
FORMATS = {"date": "Y-m-d H:i e", "": "Y-m-d H:i:s e"}


@register.filter
def local_time(moment: datetime, style: str = "") -> SafeString:
    """`style` "date" leaves out the seconds (local-times.js's data-style)."""
    attributes = format_html(' data-style="{}"', style) if style else ""
    return format_html(
        '<time datetime="{}" data-local{}>{}</time>',
        format_date(moment, "c"),
        attributes,
        format_date(moment, FORMATS[style]),
    )
