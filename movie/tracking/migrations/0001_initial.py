"""What visitors do and who they are, moved here from the `movie` app (issue 22): state only.
The tables were made by `movie`'s migrations and keep their names (`db_table`), so on a database
that has them this changes nothing, and on an empty one `movie.0001`-`0009` have just made them."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("movie", "0009_forwards_and_impression_owner"),
        ("catalogue", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="VisitorForward",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("from_visitor", models.CharField(max_length=64, unique=True)),
                ("to_visitor", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "db_table": "movie_visitorforward",
            },
        ),
        migrations.CreateModel(
            name="AccountVisitor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("visitor", models.CharField(max_length=64, unique=True)),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="visitor", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "db_table": "movie_accountvisitor",
            },
        ),
        migrations.CreateModel(
            name="Impression",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("visitor", models.CharField(max_length=64)),
                ("model", models.CharField(max_length=32)),
                ("model_version", models.CharField(blank=True, max_length=64, null=True)),
                ("page", models.CharField(max_length=32)),
                ("movie_ids", models.JSONField()),
                ("size", models.PositiveSmallIntegerField()),
                ("created_at", models.DateTimeField()),
                ("owner", models.CharField(blank=True, default="", max_length=32)),
            ],
            options={
                "db_table": "movie_impression",
                "indexes": [models.Index(fields=["page", "created_at"], name="impression_page_created")],
            },
        ),
        migrations.CreateModel(
            name="Interaction",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("visitor", models.CharField(db_index=True, max_length=64)),
                ("kind", models.CharField(choices=[("click", "Click"), ("rate", "Rate")], max_length=8)),
                ("value", models.FloatField(blank=True, null=True)),
                ("event_id", models.UUIDField(unique=True)),
                ("created_at", models.DateTimeField()),
                ("position", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("client", models.CharField(blank=True, default="", max_length=24)),
                ("impression", models.ForeignKey(blank=True, null=True,
                                                 on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="clicks", to="tracking.impression")),
                ("movie", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                            related_name="interactions", to="catalogue.movie")),
            ],
            options={
                "db_table": "movie_interaction",
                "indexes": [
                    models.Index(fields=["visitor", "-created_at"], name="interaction_visitor_recent"),
                    models.Index(fields=["created_at"], name="interaction_created"),
                ],
            },
        ),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=state_operations)]
