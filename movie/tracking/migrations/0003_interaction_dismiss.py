"""Issue 25: "Not interested" is an interaction kind of its own (`Interaction.Kind.DISMISS`): a
change of the column's choices only, no row changes."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0002_removalmark"),
    ]

    operations = [
        migrations.AlterField(
            model_name="interaction",
            name="kind",
            field=models.CharField(
                choices=[("click", "Click"), ("rate", "Rate"), ("dismiss", "Not interested")], max_length=8),
        ),
    ]
