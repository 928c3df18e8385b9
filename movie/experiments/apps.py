from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """A/B experiments between the recommenders: arms, CTR statistics, the report, and the staff
    dashboard with its charts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "movie.experiments"
