"""Catalogue, imported MovieLens ratings, the per-visitor history mirror, paper reviews,
experiments and the lists shown to visitors (impressions).

No logic lives here: writes go through `movie.services` (and `movie.events` for
interactions), reads through `movie.selectors`.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Movie(models.Model):
    # The MovieLens movieId, so ratings, links and trained models share one key.
    id = models.IntegerField(primary_key=True)
    title = models.CharField(max_length=255)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    # IMDb ids keep their leading zeros ("0114709"); the page prefixes "tt".
    imdb_id = models.CharField(max_length=16, blank=True)
    tmdb_id = models.PositiveIntegerField(null=True, blank=True)
    poster_url = models.URLField(max_length=500, blank=True)
    # The catalogue's sort keys, from the imported ratings (`movie.services.movie_stats_write`):
    # how many there are, and their mean pulled towards the catalogue's mean by a prior
    # worth RATING_PRIOR ratings, so one 5-star rating does not top "highest rated".
    ratings_count = models.PositiveIntegerField(default=0)
    rating_score = models.FloatField(default=0.0)

    class Meta:
        ordering = ["title", "id"]
        indexes = [
            models.Index(fields=["title"], name="movie_title_idx"),
            models.Index(fields=["-ratings_count", "id"], name="movie_popular_idx"),
            models.Index(fields=["-rating_score", "id"], name="movie_rated_idx"),
            models.Index(fields=["-year", "id"], name="movie_newest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


class MovieTag(models.Model):
    """A tag of the imported MovieLens data on a movie (normalised by
    `pytorch_models.data.movielens.tag_normalise`), with how many dataset users applied it:
    PinSage reads them as an item feature."""

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=255)
    users = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["movie", "name"], name="movie_tag_movie_name")]

    def __str__(self) -> str:
        return self.name


class DatasetRating(models.Model):
    """One rating from the imported MovieLens data (not from site visitors)."""

    dataset_user = models.PositiveIntegerField()
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="dataset_ratings")
    rating = models.FloatField()
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset_user", "movie"], name="dataset_rating_user_movie")
        ]


class Interaction(models.Model):
    """The site's per-visitor history, mirrored from the click log by `movie.events`."""

    class Kind(models.TextChoices):
        CLICK = "click", "Click"
        RATE = "rate", "Rate"

    # A visitor id (`movie.visitors`): never the session key, which is a credential.
    visitor = models.CharField(max_length=64, db_index=True)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True)
    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField()
    # A click on a poster of a shown list (`movie.impressions`): the list, and the poster's
    # place in it from 1. Empty for a click from anywhere else, and for every rating.
    impression = models.ForeignKey("Impression", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="clicks")
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    # Who sent it, as the rate limits bucket clients (`movie.ratelimit`): a keyed digest of the
    # client's address (IPv6 by /64), never the address itself. A retrain caps how much one
    # client weighs in its training data, so a click farm behind one address cannot move it.
    client = models.CharField(max_length=24, blank=True, default="")

    class Meta:
        indexes = [
            # visitor_history(): newest first for one visitor.
            models.Index(fields=["visitor", "-created_at"], name="interaction_visitor_recent"),
            # visitors_recent(): the live sweep's visitors with recent events.
            models.Index(fields=["created_at"], name="interaction_created"),
        ]


class AccountVisitor(models.Model):
    """The visitor id of a signed-in account: what its events and lists are keyed by."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="visitor")
    visitor = models.CharField(max_length=64, unique=True)


class VisitorForward(models.Model):
    """Where an anonymous visitor id went when its session signed up or in (`movie.moves`): to
    itself when a new account adopted it, else to the account its history moved to. One row per
    id, so an id moves once and is never both adopted and moved; a click still in flight under
    the old id finds the row when it confirms and follows its history. Kept
    `moves.FORWARD_KEEP_S` (a day, far past any request or retry still carrying the old id);
    `moves.forward_claim` deletes older rows whenever it writes one: one row per sign-up and
    log-in of the last day."""

    from_visitor = models.CharField(max_length=64, unique=True)
    to_visitor = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)


class PaperReview(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    paper_title = models.CharField(max_length=300)
    authors = models.CharField(max_length=300)
    venue = models.CharField(max_length=100)
    url = models.URLField(max_length=300)
    body = models.TextField(help_text="Trusted HTML written by the site's editors.")
    # The recommender this paper describes: a name in pytorch_models.models.names.
    model_name = models.CharField(max_length=32, db_index=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Experiment(models.Model):
    """An A/B split of visitors between recommenders; `movie.experiments` assigns and measures.

    `arms`: [{"model": one of settings.RECOMMENDATION_MODELS, "weight": a positive number}, ...].
    Running from `started_at` until `stopped_at` (open-ended when empty).
    """

    name = models.CharField(max_length=64, unique=True)
    arms = models.JSONField()
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.name


class Impression(models.Model):
    """A list of movies shown to a visitor, mirrored from the impressions log so that CTR is a
    SQL query. Never training data: the models learn from `Interaction` only."""

    id = models.UUIDField(primary_key=True)
    visitor = models.CharField(max_length=64)
    model = models.CharField(max_length=32)
    model_version = models.CharField(max_length=64, null=True, blank=True)
    page = models.CharField(max_length=32)
    movie_ids = models.JSONField()  # in the order shown: position p is movie_ids[p - 1]
    size = models.PositiveSmallIntegerField()  # len(movie_ids): how many positions CTR@p counts
    created_at = models.DateTimeField()  # when the page was rendered
    # The try that wrote this row (`movie.impressions`): every try of an impression writes the
    # same log item, which names its own try; a try confirms the item only while both name it.
    owner = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["page", "created_at"], name="impression_page_created")]
