"""Included under /api/v1/ (core/urls.py), before the rest of the API: the creation URL
answers with and without its trailing slash."""

from django.urls import path

from . import views

app_name = "uploads"

urlpatterns = [
    path("uploads", views.uploads),
    path("uploads/", views.uploads, name="uploads"),
    path("uploads/<str:upload_id>", views.upload, name="upload"),
]
