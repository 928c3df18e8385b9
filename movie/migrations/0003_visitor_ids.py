"""Visitor ids that are not secrets: `u:<user id>` and `s:<session key>` become `v:<random>`.

Every old key found in the history mirror gets a new id: an account's goes to its
`AccountVisitor`, a live session's into that session. Then the key moves everywhere it was
written: the mirror here, the click log in DynamoDB (copied, then deleted) and the live state
in Redis (dropped and queued, so the workers replay the moved log). A fresh database has
nothing to move and touches neither service. Re-running after a failure half-way moves what
is left.
"""

import logging
import secrets
from importlib import import_module

from django.conf import settings
from django.db import migrations, models

log = logging.getLogger(__name__)


def _session_set(session_key: str, visitor: str) -> None:
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if store.exists(session_key):
        store["visitor"] = visitor
        store.save()


def visitor_ids_assign(apps, schema_editor) -> dict[str, str]:
    """Give every old visitor key in the mirror a new id; returns old → new."""
    Interaction = apps.get_model("movie", "Interaction")
    AccountVisitor = apps.get_model("movie", "AccountVisitor")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    moves = {}
    for old in (Interaction.objects.exclude(visitor__startswith="v:").values_list("visitor", flat=True)
                .distinct()):
        kind, _, rest = old.partition(":")
        if kind == "u" and rest.isdigit() and User.objects.filter(pk=int(rest)).exists():
            moves[old] = AccountVisitor.objects.get_or_create(
                user_id=int(rest), defaults={"visitor": f"v:{secrets.token_hex(16)}"}
            )[0].visitor
        elif kind == "s" and rest:
            moves[old] = f"v:{secrets.token_hex(16)}"
            _session_set(rest, moves[old])
        else:
            log.warning("history under an unknown visitor key kept as it is")
    return moves


def visitor_ids_move(apps, schema_editor) -> None:
    moves = visitor_ids_assign(apps, schema_editor)
    if not moves:
        return
    from eventstore.clicklog import events_move  # the services are needed only when there is data
    from eventstore.live import visitors_changed

    Interaction = apps.get_model("movie", "Interaction")
    for old, new in moves.items():
        events_move(from_visitor=old, to_visitor=new)
        Interaction.objects.filter(visitor=old).update(visitor=new)
        visitors_changed([old, new], replay=True)


class Migration(migrations.Migration):
    # Each key moves on its own: a failure keeps what moved, and a re-run does the rest.
    atomic = False

    dependencies = [
        ("movie", "0002_paper_reviews"),
        ("sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AccountVisitor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("visitor", models.CharField(max_length=64, unique=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=models.deletion.CASCADE, related_name="visitor", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(fields=["created_at"], name="interaction_created"),
        ),
        migrations.RunPython(visitor_ids_move, migrations.RunPython.noop),
    ]
