"""The catalogue: movies, their genres and tags, the imported MovieLens ratings, paper reviews.

No logic lives here: writes go through `movie.catalogue.services`, reads through
`movie.catalogue.selectors`. The tables keep the names they had when all of the web app was one
Django app, `movie` (`db_table`): moving the models here changed no table (migration
`movie.0010_split_into_apps`).
"""

from django.db import models

from movie.catalogue.titles import title_display


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "movie_genre"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Movie(models.Model):
    # The MovieLens movieId, so ratings, links and trained models share one key.
    id = models.IntegerField(primary_key=True)
    # As MovieLens writes it, without the year: "Matrix, The", the catalogue's sort key. Pages
    # show `display_title`.
    title = models.CharField(max_length=255)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    # IMDb ids keep their leading zeros ("0114709"); the page prefixes "tt".
    imdb_id = models.CharField(max_length=16, blank=True)
    tmdb_id = models.PositiveIntegerField(null=True, blank=True)
    poster_url = models.URLField(max_length=500, blank=True)
    # The catalogue's sort keys, from the imported ratings (`services.movie_stats_write`):
    # how many there are, and their mean pulled towards the catalogue's mean by a prior
    # worth RATING_PRIOR ratings, so one 5-star rating does not top "highest rated".
    ratings_count = models.PositiveIntegerField(default=0)
    rating_score = models.FloatField(default=0.0)

    class Meta:
        db_table = "movie_movie"
        ordering = ["title", "id"]
        indexes = [
            models.Index(fields=["title"], name="movie_title_idx"),
            models.Index(fields=["-ratings_count", "id"], name="movie_popular_idx"),
            models.Index(fields=["-rating_score", "id"], name="movie_rated_idx"),
            models.Index(fields=["-year", "id"], name="movie_newest_idx"),
        ]

    @property
    def display_title(self) -> str:
        """ "The Matrix": the title as people write it."""
        return title_display(self.title)

    def __str__(self) -> str:
        return f"{self.display_title} ({self.year})" if self.year else self.display_title


class MovieTag(models.Model):
    """A tag of the imported MovieLens data on a movie (normalised by
    `pytorch_models.data.movielens.tag_normalise`), with how many dataset users applied it:
    PinSage reads them as an item feature."""

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=255)
    users = models.PositiveIntegerField()

    class Meta:
        db_table = "movie_movietag"
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
        db_table = "movie_datasetrating"
        constraints = [
            models.UniqueConstraint(fields=["dataset_user", "movie"], name="dataset_rating_user_movie")
        ]


class DatasetUser(models.Model):
    """A MovieLens user's demographics, where the release has them (ml-1m's users.dat,
    ml-100k's u.user): user features beside `DatasetRating.dataset_user`."""

    dataset_user = models.PositiveIntegerField(unique=True)
    gender = models.CharField(max_length=1)  # "M" | "F"
    # ml-100k: years; ml-1m: the lower bound of the age group (1 = under 18, 18, 25, ..., 56)
    age = models.PositiveSmallIntegerField()
    occupation = models.CharField(max_length=64)
    zip_code = models.CharField(max_length=16)

    class Meta:
        db_table = "movie_datasetuser"

    def __str__(self) -> str:
        return f"dataset user {self.dataset_user}"


class MovieLensImport(models.Model):
    """How far the import of one release got: its ratings are committed a chunk at a time, each
    chunk in the transaction that moves `ratings_offset` past it, so a run killed half-way is
    resumed at the first chunk not committed, and a finished release is not read again.

    Bound: one row per folder imported (an import of new contents in a folder replaces the
    folder's row), ~200 bytes each."""

    key = models.CharField(max_length=64, unique=True)  # sha256 of the release's files' contents
    path = models.TextField()  # the folder, as given to the import
    ratings_offset = models.BigIntegerField()  # byte offset of the first rating not committed
    ratings_rows = models.BigIntegerField(default=0)  # ratings read before ratings_offset
    ratings_skipped = models.BigIntegerField(default=0)  # of those, of movies missing from the release
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "movie_movielensimport"

    def __str__(self) -> str:
        return f"{self.path} ({'finished' if self.finished_at else f'at byte {self.ratings_offset}'})"


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
        db_table = "movie_paperreview"
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title
