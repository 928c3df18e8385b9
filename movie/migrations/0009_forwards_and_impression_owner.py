from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('movie', '0008_interaction_client'),
    ]

    operations = [
        migrations.AddField(
            model_name='impression',
            name='owner',
            field=models.CharField(blank=True, default='', max_length=32),
        ),
        migrations.CreateModel(
            name='VisitorForward',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name='ID')),
                ('from_visitor', models.CharField(max_length=64, unique=True)),
                ('to_visitor', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(db_index=True)),
            ],
        ),
    ]
