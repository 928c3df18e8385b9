from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


def _movie_changed(sender, instance, **kwargs) -> None:
    """A movie saved or deleted (or one whose genres changed) leaves the rows this process keeps
    (`selectors.movie_rows_forget`); a genre's side of the relation (instance a Genre) drops them all."""
    from movie.catalogue import selectors
    from movie.catalogue.models import Movie

    selectors.movie_rows_forget(instance.pk if isinstance(instance, Movie) else None)


class CatalogueConfig(AppConfig):
    """Movies, the MovieLens import, the pages that show them, and posters."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "movie.catalogue"

    def ready(self) -> None:
        from movie.catalogue.models import Movie

        post_save.connect(_movie_changed, sender=Movie)
        post_delete.connect(_movie_changed, sender=Movie)
        m2m_changed.connect(_movie_changed, sender=Movie.genres.through)
