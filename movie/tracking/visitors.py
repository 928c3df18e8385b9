"""Who is visiting: the visitor id that histories, events and recommendations share.

A visitor id is `v:` and 32 random hex digits. It names the visitor everywhere outside the
web process (logs, Kafka keys, DynamoDB keys, Redis keys) and is not a credential: the
session key, which is, never leaves the session store. An anonymous visitor's id lives in its
session; an account's in `AccountVisitor`, which an account signing up takes over from its
session, so its history needs no moving. Either way the session's id is claimed once
(`moves.forward_claim`) and leaves the session: it is the account's now, never moved again.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from movie.tracking import moves
from movie.tracking.models import AccountVisitor, Interaction, VisitorForward
from movie.tracking.ratelimit import client_address, limit

log = logging.getLogger(__name__)

SESSION_FIELD = "visitor"
# An anonymous visitor id whose history still has to move to the signed-in account.
MOVE_FIELD = "visitor_move_from"
VISITOR_ID = re.compile(r"v:[0-9a-f]{32}")


def visitor_new() -> str:
    return f"v:{secrets.token_hex(16)}"


def account_visitor(user, *, adopt: str | None = None) -> str:
    """The account's visitor id, created on first use: `adopt` (an anonymous session's id) if
    given and still unclaimed, so that a log-in racing this sign-up cannot move it elsewhere."""
    found = AccountVisitor.objects.filter(user=user).values_list("visitor", flat=True).first()
    if found:
        return found
    if adopt and not moves.forward_claim(from_visitor=adopt, to_visitor=adopt):
        log.warning("%s went to another account: the new account gets an id of its own", adopt)
        adopt = None
    try:
        with transaction.atomic():
            return AccountVisitor.objects.create(user=user, visitor=adopt or visitor_new()).visitor
    except IntegrityError:  # a concurrent request created it first
        return AccountVisitor.objects.get(user=user).visitor


def visitor_key(request: HttpRequest) -> str:
    """The visitor id of this request: the account's when signed in, else the session's
    (creating the session, rate-limited per client address)."""
    cached = getattr(request, "_visitor", None)
    if cached:
        return cached
    if request.user.is_authenticated:
        visitor = account_visitor(request.user)
        if MOVE_FIELD in request.session:
            history_move_finish(request)
    else:
        visitor = request.session.get(SESSION_FIELD)
        if not visitor:
            if request.session.session_key is None:
                limit("session", client_address(request))
            visitor = request.session[SESSION_FIELD] = visitor_new()
            # Saved now, not at the end of the response: requests that overlap this one
            # (a page's parallel fetches) must see the same id.
            request.session.save()
            request._visitor_made = True
    request._visitor = visitor
    return visitor


# How long after an event's first try a retry in a new session may take over the visitor id that
# try made (`visitor_resume`): a browser retries for 7 s (app.js RETRY_MS); a minute leaves room
# for a first try that stalled.
RESUME_S = 60


def visitor_resume(request: HttpRequest, event_id: str | None) -> str:
    """The visitor id for an event this request may be retrying. A first click in a new session
    gets its visitor id there, and only the answer carries the session's cookie: when the answer
    is lost (the web process died, or the browser stopped waiting under load), the retry comes
    without the cookie and made a new session. If the event's first try recorded it under an
    anonymous id that holds nothing else, was claimed by no account, and is under RESUME_S old,
    this session takes that id over, so the retry finishes or answers for the event as its own
    and the visitor keeps its click (the soak's 422s). The idempotency key (a random UUID only
    that browser and this site know) is what proves the retry is the first try's browser, for
    that one event and that minute, as the session cookie would. Otherwise: `visitor_key`."""
    visitor = visitor_key(request)
    if event_id is None or not getattr(request, "_visitor_made", False):
        return visitor
    prior = Interaction.objects.filter(event_id=event_id).values_list("visitor", "created_at").first()
    if prior is None or prior[0] == visitor or timezone.now() - prior[1] > timedelta(seconds=RESUME_S):
        return visitor
    first = prior[0]
    if (Interaction.objects.filter(visitor=first).count() != 1  # used since: a live session's id
            or AccountVisitor.objects.filter(visitor=first).exists()
            or VisitorForward.objects.filter(from_visitor=first).exists()):
        return visitor
    request.session[SESSION_FIELD] = request._visitor = first
    request.session.save()
    log.info("a retry in a new session took over %s, made by its first try", first)
    return first


def session_visitor(request: HttpRequest) -> str | None:
    """The anonymous visitor id of this session, if it has one; never creates one."""
    return request.session.get(SESSION_FIELD)


def session_visitor_take(request: HttpRequest) -> str | None:
    """The anonymous visitor id of this session, taken out of it: for a sign-up or a log-in,
    which give it to the account. A signed-in session has none to give: an id it still
    carries (one signed up before sign-up took it out) is the account's history, never to be
    moved to another."""
    visitor = request.session.pop(SESSION_FIELD, None)
    return None if request.user.is_authenticated else visitor


def history_move_finish(request: HttpRequest) -> None:
    """Move the history of the session's anonymous visitor id to the signed-in account; if
    the click pipeline is down, the session remembers and a later request tries again."""
    anonymous = request.session.get(MOVE_FIELD)
    if anonymous is None or not request.user.is_authenticated:
        return
    to_visitor = account_visitor(request.user)
    try:
        moves.history_move(from_visitor=anonymous, to_visitor=to_visitor)
    except Exception:
        # Signing in must not fail because the pipeline is down.
        log.exception("could not move history from %s to %s yet", anonymous, to_visitor)
        return
    del request.session[MOVE_FIELD]
