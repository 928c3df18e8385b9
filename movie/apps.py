from django.apps import AppConfig


class MovieConfig(AppConfig):
    """The web app's shell: the base template, the static files and the header's links, shared
    by its apps (catalogue, tracking, experiments). It holds no models any more, but keeps its
    migrations: they made every table the apps use, and an existing database has run them."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "movie"
