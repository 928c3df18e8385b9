"""The catalogue's models, moved here from the `movie` app (issue 22): state only. Their tables
were made by `movie`'s migrations and keep their names (`db_table`), so on a database that has
them this changes nothing, and on an empty one `movie.0001`-`0009` have just made them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("movie", "0009_forwards_and_impression_owner"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Genre",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True)),
            ],
            options={
                "db_table": "movie_genre",
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="PaperReview",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("slug", models.SlugField(max_length=64, unique=True)),
                ("title", models.CharField(max_length=200)),
                ("paper_title", models.CharField(max_length=300)),
                ("authors", models.CharField(max_length=300)),
                ("venue", models.CharField(max_length=100)),
                ("url", models.URLField(max_length=300)),
                ("body", models.TextField(help_text="Trusted HTML written by the site's editors.")),
                ("model_name", models.CharField(db_index=True, max_length=32)),
            ],
            options={
                "db_table": "movie_paperreview",
                "ordering": ["title"],
            },
        ),
        migrations.CreateModel(
            name="Movie",
            fields=[
                ("id", models.IntegerField(primary_key=True, serialize=False)),
                ("title", models.CharField(max_length=255)),
                ("year", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("imdb_id", models.CharField(blank=True, max_length=16)),
                ("tmdb_id", models.PositiveIntegerField(blank=True, null=True)),
                ("poster_url", models.URLField(blank=True, max_length=500)),
                ("ratings_count", models.PositiveIntegerField(default=0)),
                ("rating_score", models.FloatField(default=0.0)),
                # Its table is movie_movie_genres, named after the model's table as before.
                ("genres", models.ManyToManyField(blank=True, related_name="movies", to="catalogue.genre")),
            ],
            options={
                "db_table": "movie_movie",
                "ordering": ["title", "id"],
                "indexes": [
                    models.Index(fields=["title"], name="movie_title_idx"),
                    models.Index(fields=["-ratings_count", "id"], name="movie_popular_idx"),
                    models.Index(fields=["-rating_score", "id"], name="movie_rated_idx"),
                    models.Index(fields=["-year", "id"], name="movie_newest_idx"),
                ],
            },
        ),
        migrations.CreateModel(
            name="DatasetRating",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("dataset_user", models.PositiveIntegerField()),
                ("rating", models.FloatField()),
                ("rated_at", models.DateTimeField()),
                ("movie", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="dataset_ratings", to="catalogue.movie")),
            ],
            options={
                "db_table": "movie_datasetrating",
                "constraints": [models.UniqueConstraint(fields=("dataset_user", "movie"),
                                                        name="dataset_rating_user_movie")],
            },
        ),
        migrations.CreateModel(
            name="MovieTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=255)),
                ("users", models.PositiveIntegerField()),
                ("movie", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="tags",
                                            to="catalogue.movie")),
            ],
            options={
                "db_table": "movie_movietag",
                "constraints": [models.UniqueConstraint(fields=("movie", "name"),
                                                        name="movie_tag_movie_name")],
            },
        ),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=state_operations)]
