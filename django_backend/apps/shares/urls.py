from django.urls import path, re_path

from . import views
from .tokens import TOKEN_PATTERN

app_name = "shares"

urlpatterns = [
    path("", views.upload, name="upload"),
    re_path(rf"^s/(?P<share_token>{TOKEN_PATTERN})$", views.landing, name="landing"),
    re_path(rf"^s/(?P<share_token>{TOKEN_PATTERN})/report$", views.report, name="report"),
    re_path(rf"^d/(?P<session_token>{TOKEN_PATTERN})$", views.session, name="session"),
    re_path(rf"^m/(?P<manage_token>{TOKEN_PATTERN})$", views.manage, name="manage"),
    re_path(rf"^m/(?P<manage_token>{TOKEN_PATTERN})/revoke$", views.revoke, name="revoke"),
    # A logged-in sender's own shares, under the account's pages.
    path("account/shares/", views.my_shares, name="mine"),
    path("account/shares/<int:share_id>/", views.owner_share, name="owner_share"),
    path("account/shares/<int:share_id>/revoke", views.owner_revoke, name="owner_revoke"),
]
