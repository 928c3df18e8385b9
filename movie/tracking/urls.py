from django.contrib.auth.views import LogoutView
from django.urls import path

from movie.tracking import accounts, api

urlpatterns = [
    path("api/events", api.events, name="api-events"),
    path("api/impressions", api.impressions, name="api-impressions"),
    path("api/recommendations/<str:model>/", api.recommendations, name="api-recommendations"),
    path("accounts/signup/", accounts.SignUpView.as_view(), name="signup"),
    path("accounts/login/", accounts.SignInView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
]
