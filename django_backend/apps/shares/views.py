"""The HTML pages: upload, the recipient's landing page, download and report, the sender's
page and revoke, and a logged-in owner's list of their shares.

Thin: each parses its input, calls one service and renders the result. Service exceptions
become the error page in ServiceErrorMiddleware; a view catches only what it shows
differently (a form again, with its message).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.common import ratelimits
from apps.common.decorators import secret_url

from . import selectors
from .clients import actor_from_request
from .downloads import claim_request, serve_session
from .exceptions import InvalidShareOption, PasswordRequired, ShareError, WrongPassword
from .forms import DownloadForm, ReportForm, ShareForm
from .links import manage_url, qr_svg, share_url
from .models import Share
from .services import lifecycle, moderation
from .tokens import share_token_for


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_ANONYMOUS_UPLOADS and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    status = 200
    if request.method == "POST":
        form = ShareForm(request.POST, request.FILES)
        ratelimits.count(request, "upload")
        if form.is_valid():
            try:
                created = lifecycle.share_create(
                    file=form.cleaned_data["file"],
                    content_type=form.cleaned_data["file"].content_type,
                    expires_in=form.cleaned_data["expires_in"],
                    max_downloads=form.cleaned_data["max_downloads"],
                    password=form.cleaned_data["password"],
                    actor=actor_from_request(request),
                    owner=request.user if request.user.is_authenticated else None,
                    via="page",
                )
            except InvalidShareOption as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                return _see_other(reverse("shares:manage", args=[created.manage_token]))
        status = 400
    else:
        form = ShareForm()
    context = {"form": form, "max_upload_size": settings.MAX_UPLOAD_SIZE}
    return render(request, "shares/upload.html", context, status=status)


def _landing(
    request: HttpRequest, share: Share, form: DownloadForm, status: int = 200
) -> HttpResponse:
    share_token = request.resolver_match.kwargs["share_token"]
    context = {
        "share": share,
        "form": form,
        "report_path": reverse("shares:report", args=[share_token]),
    }
    return render(request, "shares/landing.html", context, status=status)


# The Download form is authorized by the secret in its own URL, and the page's no-referrer
# policy makes browsers send `Origin: null`, which the CSRF check would reject.
@csrf_exempt
@secret_url
@require_http_methods(["GET", "HEAD", "POST"])
def landing(request: HttpRequest, share_token: str) -> HttpResponse:
    """GET/HEAD show the file and never count; POST claims one download and streams it."""
    if request.method == "POST":
        return download(request, share_token)
    share = lifecycle.share_open(share_token=share_token, actor=actor_from_request(request))
    return _landing(request, share, DownloadForm())


def download(request: HttpRequest, share_token: str) -> HttpResponse:
    """Take one download, then send the browser to the download session it opened, whose
    URL serves the file in ranges: the browser's own Resume works there."""
    form = DownloadForm(request.POST)
    try:
        claimed = claim_request(
            request,
            share_token=share_token,
            password=form.data.get("password", ""),
            open_bytes=False,
        )
    except (PasswordRequired, WrongPassword) as exc:
        # Nothing was consumed: show the page again with the message, as a 403.
        form.add_error("password", exc.message)
        share = selectors.share_get(share_token=share_token)
        return _landing(request, share, form, status=403)
    return _see_other(reverse("shares:session", args=[claimed.session_token]))


@secret_url
@require_safe
def session(request: HttpRequest, session_token: str) -> HttpResponse:
    """The download session: the file, or the range asked for; never counts a download."""
    return serve_session(request, session_token)


@csrf_exempt  # authorized by the token in the URL, like the Download form
@secret_url
@require_http_methods(["GET", "HEAD", "POST"])
def report(request: HttpRequest, share_token: str) -> HttpResponse:
    """A recipient reports a file to the operators: a reason and an optional note."""
    share = selectors.share_get(share_token=share_token)
    context = {"share": share, "landing_path": reverse("shares:landing", args=[share_token])}
    if request.method != "POST":
        context["form"] = ReportForm()
        return render(request, "shares/report.html", context)
    form = ReportForm(request.POST)
    if not form.is_valid():
        context["form"] = form
        return render(request, "shares/report.html", context, status=400)
    ratelimits.count(request, "report")
    moderation.share_report(
        share_token=share_token,
        reason=form.cleaned_data["reason"],
        note=form.cleaned_data["note"],
        actor=actor_from_request(request),
    )
    return render(request, "shares/report_done.html", context)


@secret_url
@require_safe
def manage(request: HttpRequest, manage_token: str) -> HttpResponse:
    share = selectors.share_get_for_manage(manage_token=manage_token)
    link = share_url(request, share_token_for(manage_token))
    context = {
        "share": share,
        "events": share.events.all(),
        "share_url": link,
        "share_qr": qr_svg(link),
        "manage_url": manage_url(request, manage_token),
        "revoke_path": reverse("shares:revoke", args=[manage_token]),
        "refresh_seconds": 10 if share.is_available else None,
    }
    return render(request, "shares/manage.html", context)


# Authorized by the manage token in the URL; see `landing` for why CSRF does not apply.
@csrf_exempt
@secret_url
@require_POST
def revoke(request: HttpRequest, manage_token: str) -> HttpResponse:
    share = selectors.share_get_for_manage(manage_token=manage_token)
    lifecycle.share_revoke(share_id=share.pk, actor=actor_from_request(request))
    return _see_other(reverse("shares:manage", args=[manage_token]))


@login_required
@require_http_methods(["GET", "HEAD"])
def my_shares(request: HttpRequest) -> HttpResponse:
    """A logged-in sender's shares, newest first, by cursor."""
    try:
        limit = int(request.GET.get("limit", 20))
        page = selectors.shares_of_owner(
            owner=request.user, limit=limit, after=request.GET.get("after") or None
        )
    except (ValueError, ShareError):
        # A hand-edited or stale address: the first page is the sensible answer.
        return redirect("shares:mine")
    return render(request, "shares/mine.html", {"page": page, "limit": limit})


@login_required
@never_cache
@require_safe
def owner_share(request: HttpRequest, share_id: int) -> HttpResponse:
    """One of the logged-in owner's shares: status, timeline and Revoke, by the session.

    The way back for a sender who lost the manage page. The share link cannot be shown
    here: the database keeps only its hash, and the session is not the manage token.
    """
    share = selectors.share_get_for_owner(owner=request.user, share_id=share_id)
    context = {
        "share": share,
        "events": share.events.all(),
        "revoke_path": reverse("shares:owner_revoke", args=[share.pk]),
    }
    return render(request, "shares/owner.html", context)


@login_required
@require_POST
def owner_revoke(request: HttpRequest, share_id: int) -> HttpResponse:
    """Revoke one of the logged-in owner's shares (authorized by the session)."""
    try:
        share = selectors.share_get_for_owner(owner=request.user, share_id=share_id)
    except ShareError as exc:
        messages.error(request, exc.message)
    else:
        lifecycle.share_revoke(share_id=share.pk, actor=actor_from_request(request))
        messages.success(
            request, gettext("“%(name)s” is revoked and its file deleted.") % {"name": share.name}
        )
    return redirect("shares:mine")
