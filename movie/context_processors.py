"""Template context of every page: the site's links, reversed once per process.

The header's nine `{% url %}` tags cost about 0.3 ms of every page; these links never change
while a process runs (the key is the script prefix every URL starts with).
"""

import functools

from django.conf import settings
from django.http import HttpRequest
from django.urls import get_script_prefix, reverse

from pytorch_models.models.names import RECOMMENDERS

PAGES = ("catalogue", "history", "paper-list", "login", "logout", "signup", "dashboard")


@functools.lru_cache(maxsize=4)
def _links(script_prefix: str) -> dict:
    links = {name.replace("-", "_"): reverse(name) for name in PAGES}
    links["recommendations"] = {m: reverse("recommendations", args=[m])
                                for m in settings.RECOMMENDATION_MODELS}
    # The header's and the recommendation page's tabs, in the registry's order.
    links["models"] = [
        {"name": r.name, "label": r.label, "url": links["recommendations"][r.name]}
        for r in RECOMMENDERS if r.name in settings.RECOMMENDATION_MODELS
    ]
    return links


def links(request: HttpRequest) -> dict:
    return {"links": _links(get_script_prefix())}
