"""A query string Django refuses to parse answers 400 in either mode.

Django answers a SuspiciousOperation with 400, but with DEBUG on its technical page lists
`request.GET`, which parses the query string again and raises again (TooManyFieldsSent, past
DATA_UPLOAD_MAX_NUMBER_FIELDS): `GET /?p0=1&...&p4999=1` became a 500. Parsing it once, here,
first, turns the refusal into the same plain 400 page in both modes. Bodies are not read here
(the rate limiter counts a request before anything parses its body); a body Django refuses
(too big, too many fields or files) already answers 400 in both modes, since Django empties
`request.POST` before its debug page reads it (tests/webapp/test_middleware.py).
"""

from __future__ import annotations

import logging

from django.core.exceptions import TooManyFieldsSent
from django.views.defaults import bad_request


class QueryStringCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            _ = request.GET  # parsed once and kept (a cached property) for every later layer
        except TooManyFieldsSent as exc:
            # Where Django logs what it refuses as suspicious, without the traceback of our code.
            logging.getLogger("django.security.TooManyFieldsSent").warning("%s %s", request.path, exc)
            return bad_request(request, exc)
        return self.get_response(request)
