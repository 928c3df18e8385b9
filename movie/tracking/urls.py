from django.urls import path

from movie import api

urlpatterns = [
    path("events", api.events, name="api-events"),
    path("impressions", api.impressions, name="api-impressions"),
    path("recommendations/<str:model>/", api.recommendations, name="api-recommendations"),
]
