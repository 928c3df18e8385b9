"""The catalogue's sort keys on Movie (ratings count, shrunk mean rating), filled from the
imported ratings; `movie.catalogue.services.movie_stats_write` keeps them current on every import."""

from django.db import migrations, models


def stats_write(apps, schema_editor):
    from movie.catalogue.services import movie_stats_write

    movie_stats_write(apps.get_model("movie", "Movie"), apps.get_model("movie", "DatasetRating"))


class Migration(migrations.Migration):
    dependencies = [("movie", "0004_experiments_impressions")]

    operations = [
        migrations.AddField(model_name="movie", name="ratings_count",
                            field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name="movie", name="rating_score", field=models.FloatField(default=0.0)),
        migrations.AddIndex(model_name="movie",
                            index=models.Index(fields=["-ratings_count", "id"], name="movie_popular_idx")),
        migrations.AddIndex(model_name="movie",
                            index=models.Index(fields=["-rating_score", "id"], name="movie_rated_idx")),
        migrations.AddIndex(model_name="movie",
                            index=models.Index(fields=["-year", "id"], name="movie_newest_idx")),
        migrations.RunPython(stats_write, migrations.RunPython.noop),
    ]
