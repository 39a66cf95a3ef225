from django.apps import AppConfig


class SharesConfig(AppConfig):
    name = "apps.shares"
    verbose_name = "Shares"

    def ready(self) -> None:
        from apps.common.health import Check, register_check
        from apps.common.metrics import register_collector

        from .health import check_periodic_jobs
        from .metrics import SharesCollector

        # Reported, not critical: a late purge is for the operator to see, not a reason to
        # take every web server out of the load balancer.
        register_check(
            "periodic_jobs",
            Check(check_periodic_jobs, critical=False, threaded=False, uses_database=True),
        )
        # Active shares and stored bytes, read from the database at each scrape.
        register_collector("shares", SharesCollector())
