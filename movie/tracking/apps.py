from django.apps import AppConfig


class TrackingConfig(AppConfig):
    """What visitors do and who they are: clicks, ratings and impressions through their write
    protocol, the JSON API, visitor ids and accounts, sessions and rate limits."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "movie.tracking"
