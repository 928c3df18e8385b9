"""Generated input against every public endpoint: never a 5xx, and a refused click stores nothing."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import clicklog
from movie.tracking.impressions import impressions_for
from movie.tracking.models import Impression, Interaction

# The database and the click log keep what earlier examples wrote: tests compare counts.
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
anything = json_values | st.integers(min_value=-(10**30), max_value=10**30)
# What generic text rarely produces and has broken parsers here before.
unicode_digits = st.text(alphabet=st.characters(categories=("Nd", "No")), min_size=1, max_size=3)
huge_integers = st.integers(min_value=4000, max_value=6000).map(lambda n: "1" + "0" * n)
deep_nesting = st.integers(min_value=1000, max_value=200_000).map(lambda n: "[" * n + "]" * n)
event_bodies = st.one_of(
    st.fixed_dictionaries(
        {"movie_id": anything | st.sampled_from([1, 2, 3]),
         "kind": st.sampled_from(["click", "rate", "dismiss", "remove", ""]) | st.text(max_size=8)},
        optional={"value": anything | st.sampled_from([0.5, 3, 5.0]),
                  "impression": anything | st.uuids().map(str),
                  "position": anything | st.integers(min_value=-2, max_value=102)},
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=64),
    st.text(max_size=64),
    huge_integers.map(lambda digits: f'{{"movie_id": 1, "kind": "rate", "value": {digits}}}'),
    deep_nesting,
)


@pytest.fixture
def client(catalogue, clicklog_table, impressions_table):
    client = Client(raise_request_exception=False)
    client.get("/history/")  # a visitor id and a CSRF cookie
    return client


idempotency_keys = st.none() | st.uuids().map(str) | st.text(max_size=80)


@FUZZ
@given(body=event_bodies, key=idempotency_keys)
def test_event_api_answers_4xx_or_202_and_a_refused_click_stores_nothing(client, body, key):
    visitor = client.session["visitor"]
    rows, logged = Interaction.objects.count(), len(clicklog.events_for(visitor))
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    known = Interaction.objects.filter(event_id=key).exists() if headers and _is_uuid(key) else False

    response = client.post("/api/events", data=body, content_type="application/json", **headers)

    assert response.status_code < 500, (body, response.content[:200])
    stored = 1 if response.status_code == 202 and not known else 0  # a repeated key stores nothing
    assert Interaction.objects.count() == rows + stored
    assert len(clicklog.events_for(visitor)) == logged + stored


@FUZZ
@given(body=st.one_of(st.fixed_dictionaries({"token": anything | st.text(max_size=600)}).map(json.dumps),
                      json_values.map(json.dumps), st.binary(max_size=64), deep_nesting),
       key=idempotency_keys)
def test_impression_api_answers_4xx_and_a_token_it_did_not_sign_stores_nothing(client, body, key):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}

    response = client.post("/api/impressions", data=body, content_type="application/json", **headers)

    assert 400 <= response.status_code < 500, (body, response.content[:200])
    assert not Impression.objects.exists() and impressions_for(client.session["visitor"], pending=True) == []


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@FUZZ
@given(model=st.sampled_from(["lightgcn", "ngcf", "pinsage", "popular"]) | st.text(min_size=1, max_size=12),
       k=st.text(max_size=8) | unicode_digits,
       extra=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2))
def test_recommendation_api_never_fails(client, model, k, extra):
    response = client.get(f"/api/recommendations/{quote(model, safe='')}/", {**extra, "k": k})
    assert response.status_code < 500, (model, k, response.content[:200])


@FUZZ
@given(q=st.text(max_size=30), genre=st.text(max_size=12), page=st.text(max_size=6))
def test_catalogue_search_never_fails(client, q, genre, page):
    response = client.get("/", {"q": q, "genre": genre, "page": page})
    assert response.status_code < 500, (q, genre, page)


@FUZZ
@given(movie_id=st.integers(min_value=0, max_value=2**70), target=st.text(max_size=30))
def test_history_removal_never_fails(client, movie_id, target):
    response = client.post(f"/history/{movie_id}/remove", {"next": target})
    assert response.status_code < 500, (movie_id, target)


@FUZZ
@given(form=st.sampled_from(["/accounts/signup/", "/accounts/login/"]),
       fields=st.dictionaries(st.sampled_from(["username", "password", "password1", "password2", "next"]),
                              st.text(max_size=40), max_size=5))
def test_account_forms_never_fail(client, form, fields):
    response = client.post(form, fields)
    assert response.status_code < 500, (form, fields)
