from django.contrib import admin
from django.urls import include, path, re_path
from django.views.i18n import JavaScriptCatalog, set_language

from apps.accounts.views import rate_limit_logins
from apps.common import views as common_views
from apps.common.errors import DATABASE_OUTAGES, database_error_response
from apps.common.metrics import metrics
from apps.shares.api import api

# The admin's log-in is limited like the site's own.
admin.site.login = rate_limit_logins(admin.site.login)

# django-ninja catches every exception of its operations; in debug it answers one it has no
# handler for with a traceback page. A database outage is the API's 503 either way.
for outage in DATABASE_OUTAGES:
    api.add_exception_handler(outage, database_error_response)

urlpatterns = [
    path("", include("apps.shares.urls")),
    path("api/v1", common_views.api_index),
    path("api/v1/", common_views.api_index, name="api-index"),
    path("api/v1/", include("apps.uploads.urls")),
    path("api/v1/", api.urls),
    path("account/", include("apps.accounts.urls")),
    path("health/", common_views.health, name="health"),
    path("health/ready/", common_views.ready, name="ready"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # The language switcher's form (pages whose forms may post); see
    # apps.common.middleware.LocaleMiddleware for the others.
    path("i18n/setlang/", set_language, name="set_language"),
    # The scripts' messages in the page's language, loaded as a script file (the CSP allows
    # no inline script). Only this project's catalogue (LOCALE_PATHS), not the admin's: a
    # package without translations of its own selects none but LOCALE_PATHS.
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["apps.common"]),
        name="javascript-catalog",
    ),
    # Last: any other path under /api/ is the API's JSON 404, debug on or off.
    re_path(r"^api/(?P<path>.*)$", common_views.api_not_found),
]

handler400 = "apps.common.views.bad_request"
handler403 = "apps.common.views.permission_denied"
handler404 = "apps.common.views.page_not_found"
handler500 = "apps.common.views.server_error"
