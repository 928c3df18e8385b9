"""Requests Django refuses to parse answer 400 with DEBUG off (how `make demo` and production
run) and on (`DJANGO_DEBUG=1`): a query string past DATA_UPLOAD_MAX_NUMBER_FIELDS, whose
debug page used to raise again (a 500), and bodies too big or with too many fields or files."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

TOO_MANY = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1
MANY_PARAMETERS = "&".join(f"p{i}=1" for i in range(5000))


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def client(request, db):
    with override_settings(DEBUG=request.param):
        yield Client(raise_request_exception=False)


@pytest.mark.parametrize("path", ["/", "/api/recommendations/popular/", "/history/", "/accounts/login/",
                                  "/admin/login/", "/no-such-page/"])
def test_a_query_string_with_too_many_parameters_is_a_400(client, path):
    response = client.get(f"{path}?{MANY_PARAMETERS}")

    assert response.status_code == 400
    assert b"Bad Request (400)" in response.content  # Django's plain page, never the debug one


def test_a_post_with_too_many_parameters_in_its_query_string_is_a_400(client):
    response = client.post(f"/accounts/login/?{MANY_PARAMETERS}", {"username": "a", "password": "b"})
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/admin/login/"])
def test_a_form_with_too_many_fields_is_a_400(client, path):
    response = client.post(path, MANY_PARAMETERS, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_a_body_past_the_upload_limit_is_a_400(client):
    body = json.dumps({"movie_id": 1, "kind": "click", "pad": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    assert client.post("/api/events", body, content_type="application/json").status_code == 400
    form = {"username": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert client.post("/accounts/login/", form).status_code == 400


def test_a_form_with_too_many_files_is_a_400(client):
    files = {f"f{i}": SimpleUploadedFile(f"{i}.txt", b"x")
             for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)}
    assert client.post("/accounts/signup/", files).status_code == 400


def test_an_ordinary_query_string_reaches_the_page(client):
    response = client.get("/accounts/login/", {f"p{i}": "1" for i in range(TOO_MANY - 2)})
    assert response.status_code == 200
