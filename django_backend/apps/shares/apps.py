from django.apps import AppConfig


class SharesConfig(AppConfig):
    name = "apps.shares"
    verbose_name = "Shares"
