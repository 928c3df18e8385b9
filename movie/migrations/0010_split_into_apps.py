"""The models leave this app for the apps of the web app's concerns (issue 22): catalogue,
tracking and experiments, whose first migrations take them over. State only: every table keeps
its name (the models' `db_table`), so no row moves and no statement touches a table.

The content types of the moved models are renamed to their new app, so the permissions given
for them and the admin's history of their edits stay attached to them. A content type the new
app already has (none, unless one was made by hand) is left as it is, beside the old one.
"""

from django.db import migrations

MOVED = {
    "catalogue": ["genre", "movie", "movietag", "datasetrating", "paperreview"],
    "tracking": ["interaction", "impression", "accountvisitor", "visitorforward"],
    "experiments": ["experiment"],
}


def _content_types_relabel(apps, schema_editor, *, to_new: bool) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    types = content_type.objects.using(schema_editor.connection.alias)
    for app_label, models in MOVED.items():
        source, target = ("movie", app_label) if to_new else (app_label, "movie")
        for model in models:
            if not types.filter(app_label=target, model=model).exists():
                types.filter(app_label=source, model=model).update(app_label=target)


def content_types_forwards(apps, schema_editor) -> None:
    _content_types_relabel(apps, schema_editor, to_new=True)


def content_types_backwards(apps, schema_editor) -> None:
    _content_types_relabel(apps, schema_editor, to_new=False)


class Migration(migrations.Migration):

    dependencies = [
        ("movie", "0009_forwards_and_impression_owner"),
        ("catalogue", "0001_initial"),
        ("tracking", "0001_initial"),
        ("experiments", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # Those that point to others first: a model leaves the state after every reference to it.
            state_operations=[migrations.DeleteModel(name=name) for name in (
                "Interaction", "AccountVisitor", "VisitorForward", "Impression", "DatasetRating", "MovieTag",
                "Movie", "Genre", "PaperReview", "Experiment",
            )],
        ),
        migrations.RunPython(content_types_forwards, content_types_backwards),
    ]
