from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    verbose_name = "Common"

    def ready(self) -> None:
        from .metrics import connect_task_signals

        connect_task_signals()
