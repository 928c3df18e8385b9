from django.contrib import admin
from django.urls import include, path

from movie.tracking.ratelimit import login_limited

urlpatterns = [
    # Before admin.site.urls, which it shadows: the admin's log-in tries count as ours do.
    path("admin/login/", login_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    # The web app's apps, each under the paths it always had; URL names are global (no namespaces).
    path("", include("movie.catalogue.urls")),
    path("", include("movie.tracking.urls")),
    path("dashboard/", include("movie.experiments.urls")),
]
