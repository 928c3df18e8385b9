"""What visitors do and who they are: the per-visitor history mirror of the click log
(`Interaction`), the lists shown to them (`Impression`), an account's visitor id and where an
anonymous id went when its session signed in.

No logic lives here: `movie.tracking.events` and `movie.tracking.impressions` write the mirrors,
`movie.tracking.moves` and `movie.tracking.visitors` the visitor ids; reads go through
`movie.tracking.selectors`. The tables keep their names from when the web app was one Django
app, `movie` (`db_table`; migration `movie.0010_split_into_apps`).
"""

from django.conf import settings
from django.db import models

from movie.catalogue.models import Movie


class Interaction(models.Model):
    """The site's per-visitor history, mirrored from the click log by `movie.tracking.events`."""

    class Kind(models.TextChoices):
        CLICK = "click", "Click"
        RATE = "rate", "Rate"
        DISMISS = "dismiss", "Not interested"  # the movie's latest row: out of the history and every list

    # A visitor id (`movie.tracking.visitors`): never the session key, which is a credential.
    visitor = models.CharField(max_length=64, db_index=True)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True)
    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField()
    # A click on a poster of a shown list (`movie.tracking.impressions`): the list, and the poster's
    # place in it from 1. Empty for a click from anywhere else, and for every rating.
    impression = models.ForeignKey("Impression", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="clicks")
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    # Who sent it, as the rate limits bucket clients (`movie.tracking.ratelimit`): a keyed digest of the
    # client's address (IPv6 by /64), never the address itself. A retrain caps how much one
    # client weighs in its training data, so a click farm behind one address cannot move it.
    client = models.CharField(max_length=24, blank=True, default="")

    class Meta:
        db_table = "movie_interaction"
        indexes = [
            # visitor_history(): newest first for one visitor.
            models.Index(fields=["visitor", "-created_at"], name="interaction_visitor_recent"),
            # visitors_recent(): the live sweep's visitors with recent events.
            models.Index(fields=["created_at"], name="interaction_created"),
        ]


class AccountVisitor(models.Model):
    """The visitor id of a signed-in account: what its events and lists are keyed by."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="visitor")
    visitor = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "movie_accountvisitor"


class VisitorForward(models.Model):
    """Where an anonymous visitor id went when its session signed up or in (`moves`): to
    itself when a new account adopted it, else to the account its history moved to. One row per
    id, so an id moves once and is never both adopted and moved; a click still in flight under
    the old id finds the row when it confirms and follows its history. Kept
    `moves.FORWARD_KEEP_S` (a day, far past any request or retry still carrying the old id);
    `moves.forward_claim` deletes older rows whenever it writes one: one row per sign-up and
    log-in of the last day."""

    from_visitor = models.CharField(max_length=64, unique=True)
    to_visitor = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "movie_visitorforward"


class RemovalMark(models.Model):
    """A removal of `movie_id` enters, or is about to enter, `visitor`'s click log: written
    before the removal's item, so a click that finds no mark need not query the log for later
    removals (`movie.tracking.removal_marks` argues it). Kept `removal_marks.MARK_KEEP_S`; each
    new mark deletes older ones: one row per removal of that period."""

    visitor = models.CharField(max_length=64)
    movie_id = models.IntegerField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "movie_removalmark"
        indexes = [models.Index(fields=["visitor", "movie_id"], name="removalmark_visitor_movie")]


class Impression(models.Model):
    """A list of movies shown to a visitor, mirrored from the impressions log so that CTR is a
    SQL query. Never training data: the models learn from `Interaction` only."""

    id = models.UUIDField(primary_key=True)
    visitor = models.CharField(max_length=64)
    model = models.CharField(max_length=32)
    model_version = models.CharField(max_length=64, null=True, blank=True)
    page = models.CharField(max_length=32)
    movie_ids = models.JSONField()  # in the order shown: position p is movie_ids[p - 1]
    size = models.PositiveSmallIntegerField()  # len(movie_ids): how many positions CTR@p counts
    created_at = models.DateTimeField()  # when the page was rendered
    # The try that wrote this row (`movie.tracking.impressions`): every try of an impression writes the
    # same log item, which names its own try; a try confirms the item only while both name it.
    owner = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        db_table = "movie_impression"
        indexes = [models.Index(fields=["page", "created_at"], name="impression_page_created")]
