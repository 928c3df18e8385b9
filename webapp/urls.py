from django.contrib import admin
from django.urls import include, path

from movie.ratelimit import login_limited

urlpatterns = [
    # Before admin.site.urls, which it shadows: the admin's log-in tries count as ours do.
    path("admin/login/", login_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", include("movie.urls")),
]
