from django.urls import path, re_path

from movie.experiments import dashboard

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("charts/ctr.png", dashboard.ctr_chart, name="dashboard-ctr-chart"),
    path("charts/latency.png", dashboard.latency_chart, name="dashboard-latency-chart"),
    re_path(r"^charts/(?P<model>\w+)/(?P<version>[\w-]+)/(?P<name>curves|metrics)\.png$",
            dashboard.version_chart, name="dashboard-version-chart"),
]
