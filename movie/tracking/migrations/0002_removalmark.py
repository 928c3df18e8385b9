from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RemovalMark",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("visitor", models.CharField(max_length=64)),
                ("movie_id", models.IntegerField()),
                ("created_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "db_table": "movie_removalmark",
                "indexes": [models.Index(fields=["visitor", "movie_id"], name="removalmark_visitor_movie")],
            },
        ),
    ]
