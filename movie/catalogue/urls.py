from django.urls import path

from movie.catalogue import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("movies/<int:movie_id>/", views.movie_detail, name="movie-detail"),
    path("recommendations/<str:model>/", views.recommendations, name="recommendations"),
    path("history/", views.history, name="history"),
    path("history/<int:movie_id>/remove", views.history_remove, name="history-remove"),
    path("papers/", views.paper_list, name="paper-list"),
    path("papers/<slug:slug>/", views.paper_review, name="paper-review"),
    path("posters/<int:movie_id>.svg", views.poster, name="poster"),
]
