"""Who is visiting: the visitor key that histories, events and recommendations share."""

from django.http import HttpRequest

from movie.ratelimit import client_address, limit


def visitor_key(request: HttpRequest) -> str:
    """`u:<user id>` for a signed-in user, else `s:<session key>` (creating the session)."""
    if request.user.is_authenticated:
        return f"u:{request.user.pk}"
    if request.session.session_key is None:
        limit("session", client_address(request))
        request.session.create()
        # An empty session is not sent back unless marked modified: keep the key stable.
        request.session.modified = True
    return f"s:{request.session.session_key}"


def session_visitor(request: HttpRequest) -> str | None:
    """The anonymous visitor key of this session, if it has one; never creates a session."""
    key = request.session.session_key
    return f"s:{key}" if key else None
