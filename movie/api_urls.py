from django.urls import path

from movie import api

urlpatterns = [
    path("events", api.events, name="api-events"),
    path("recommendations/<str:model>/", api.recommendations, name="api-recommendations"),
]
