"""`Experiment`, moved here from the `movie` app (issue 22): state only. Its table was made by
`movie.0004` and keeps its name (`db_table`), so on a database that has it this changes nothing."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("movie", "0009_forwards_and_impression_owner"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Experiment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True)),
                ("arms", models.JSONField()),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("stopped_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "movie_experiment",
                "ordering": ["-started_at"],
            },
        ),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=state_operations)]
