"""MovieLens tags (tags.csv) on movies, for PinSage's tag feature; `import_movielens` fills them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("movie", "0006_graphfilter_review")]

    operations = [
        migrations.CreateModel(
            name="MovieTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=255)),
                ("users", models.PositiveIntegerField()),
                ("movie", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="tags",
                                            to="movie.movie")),
            ],
        ),
        migrations.AddConstraint(
            model_name="movietag",
            constraint=models.UniqueConstraint(fields=("movie", "name"), name="movie_tag_movie_name"),
        ),
    ]
