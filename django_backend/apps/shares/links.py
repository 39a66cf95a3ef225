import io

import segno
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def absolute_url(request: HttpRequest | None, path: str) -> str:
    """SITE_URL + path when SITE_URL is set, else the address the request came to."""
    if settings.SITE_URL or request is None:
        return f"{settings.SITE_URL}{path}"
    return request.build_absolute_uri(path)


def share_url(request: HttpRequest | None, share_token: str) -> str:
    return absolute_url(request, reverse("shares:landing", args=[share_token]))


def manage_url(request: HttpRequest | None, manage_token: str) -> str:
    return absolute_url(request, reverse("shares:manage", args=[manage_token]))


def qr_svg(url: str) -> str:
    """The link as an SVG QR code, rendered here: no third-party service sees the link."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(
        buffer,
        kind="svg",
        scale=4,
        border=2,
        xmldecl=False,
        svgns=True,
        omitsize=True,  # a viewBox only: the stylesheet sets the size
        svgclass="qr",
        title="QR code of the share link",
    )
    return buffer.getvalue().decode()
