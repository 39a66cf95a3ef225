"""Accounts: sign up, log in (rate limited), API tokens. ("My shares" is the shares app's.)

Every form here acts on a session, so every one keeps CSRF protection, and these pages
keep Django's default `same-origin` referrer policy.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from apps.common import ratelimits

from . import services
from .forms import ApiTokenForm, SignUpForm


def _safe_next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return HttpResponseRedirect(_safe_next(request) or reverse(settings.LOGIN_REDIRECT_URL))
        status = 400
    else:
        form = SignUpForm()
        status = 200
    context = {"form": form, "next": _safe_next(request) or ""}
    return render(request, "accounts/signup.html", context, status=status)


def rate_limit_logins(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Count every log-in attempt (a POST) against RATE_LIMIT_LOGINS per client IP."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            ratelimits.count(request, "login")  # RateLimited becomes the 429 page
        return view(request, *args, **kwargs)

    return wrapper


@method_decorator(rate_limit_logins, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's log-in (safe `?next=` handling included), limited per client IP."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Django's log-out (POST, with CSRF), plus a GET page holding that form, for pages
    whose no-referrer policy makes a form posted from them fail the CSRF check."""

    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return render(request, "accounts/logout.html")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    created = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
        form = ApiTokenForm()
    context = {"form": form, "created": created, "tokens": request.user.api_tokens.all()}
    response = render(request, "accounts/tokens.html", context)
    if created:
        # The page shows a secret once: keep it out of every cache.
        response.headers["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke_api_token(request: HttpRequest, token_id: int) -> HttpResponse:
    if services.api_token_revoke(user=request.user, token_id=token_id):
        messages.success(request, gettext("The token is revoked."))
    return redirect("accounts:tokens")
