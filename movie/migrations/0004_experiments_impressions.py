"""Experiments (A/B splits between recommenders) and impressions (lists shown), with the
clicks they earned (issue 9)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('movie', '0003_visitor_ids'),
    ]

    operations = [
        migrations.CreateModel(
            name='Experiment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name='ID')),
                ('name', models.CharField(max_length=64, unique=True)),
                ('arms', models.JSONField()),
                ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('stopped_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-started_at'],
            },
        ),
        migrations.AddField(
            model_name='interaction',
            name='position',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='Impression',
            fields=[
                ('id', models.UUIDField(primary_key=True, serialize=False)),
                ('visitor', models.CharField(max_length=64)),
                ('model', models.CharField(max_length=32)),
                ('model_version', models.CharField(blank=True, max_length=64, null=True)),
                ('page', models.CharField(max_length=32)),
                ('movie_ids', models.JSONField()),
                ('size', models.PositiveSmallIntegerField()),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'indexes': [models.Index(fields=['page', 'created_at'], name='impression_page_created')],
            },
        ),
        migrations.AddField(
            model_name='interaction',
            name='impression',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='clicks', to='movie.impression'),
        ),
    ]
