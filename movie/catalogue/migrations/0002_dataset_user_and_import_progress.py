"""Issue 23: the demographics of ml-1m's and ml-100k's users (`DatasetUser`), and how far each
release's import got (`MovieLensImport`), so an import killed half-way resumes where it stopped.
Both are new tables; no existing row changes."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DatasetUser",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("dataset_user", models.PositiveIntegerField(unique=True)),
                ("gender", models.CharField(max_length=1)),
                ("age", models.PositiveSmallIntegerField()),
                ("occupation", models.CharField(max_length=64)),
                ("zip_code", models.CharField(max_length=16)),
            ],
            options={
                "db_table": "movie_datasetuser",
            },
        ),
        migrations.CreateModel(
            name="MovieLensImport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("key", models.CharField(max_length=64, unique=True)),
                ("path", models.TextField()),
                ("ratings_offset", models.BigIntegerField()),
                ("ratings_rows", models.BigIntegerField(default=0)),
                ("ratings_skipped", models.BigIntegerField(default=0)),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "movie_movielensimport",
            },
        ),
    ]
