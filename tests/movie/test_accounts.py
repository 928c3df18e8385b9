import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from movie import events
from movie.models import Interaction

PASSWORD = "correct-horse-battery"


def _anonymous_click(client, movie_id: int) -> str:
    """Open a session the way a visitor does and record a click through the real pipeline."""
    client.get(reverse("history"))
    visitor = f"s:{client.session.session_key}"
    events.event_record(visitor=visitor, movie_id=movie_id, kind="click")
    return visitor


def test_signup_logs_in_and_moves_the_session_history(client, catalogue, clicklog_table):
    anonymous = _anonymous_click(client, 40697)

    response = client.post(
        reverse("signup"), {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 302 and response["Location"] == reverse("catalogue")
    user = get_user_model().objects.get(username="ada")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert f"s:{client.session.session_key}" != anonymous
    assert list(Interaction.objects.filter(visitor=f"u:{user.pk}").values_list("movie_id", flat=True)) == [40697]
    assert not Interaction.objects.filter(visitor=anonymous).exists()
    page = client.get(reverse("history"))
    assert [h.movie.id for h in page.context["history"]] == [40697]


def test_signup_rejects_mismatched_passwords(client, db):
    response = client.post(reverse("signup"), {"username": "bob", "password1": PASSWORD, "password2": "other"})
    assert response.status_code == 200 and response.context["form"].errors
    assert not get_user_model().objects.filter(username="bob").exists()


def test_login_moves_history_and_logout_keeps_it_with_the_account(client, catalogue, clicklog_table):
    user = get_user_model().objects.create_user(username="grace", password=PASSWORD)
    anonymous = _anonymous_click(client, 11)

    response = client.post(reverse("login"), {"username": "grace", "password": PASSWORD})

    assert response.status_code == 302
    assert list(Interaction.objects.filter(visitor=f"u:{user.pk}").values_list("movie_id", flat=True)) == [11]
    assert not Interaction.objects.filter(visitor=anonymous).exists()
    assert "Log out" in client.get(reverse("catalogue")).content.decode()

    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("history")).context["history"] == []


def test_login_passes_the_old_session_key(client, catalogue, monkeypatch):
    user = get_user_model().objects.create_user(username="linus", password=PASSWORD)
    client.get(reverse("history"))
    old = client.session.session_key
    calls = []
    monkeypatch.setattr(events, "history_move", lambda **kw: calls.append(kw) or 0)

    client.post(reverse("login"), {"username": "linus", "password": PASSWORD})

    assert calls == [{"from_visitor": f"s:{old}", "to_visitor": f"u:{user.pk}"}]


def test_login_survives_a_failing_history_move(client, catalogue, monkeypatch):
    get_user_model().objects.create_user(username="edsger", password=PASSWORD)
    client.get(reverse("history"))

    def broken(**kwargs):
        raise RuntimeError("kafka is down")

    monkeypatch.setattr(events, "history_move", broken)
    response = client.post(reverse("login"), {"username": "edsger", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_wrong_password_is_refused(client, db):
    get_user_model().objects.create_user(username="alan", password=PASSWORD)
    response = client.post(reverse("login"), {"username": "alan", "password": "nope"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Sign up" in client.get(reverse("login")).content.decode()


@pytest.mark.parametrize("name", ["login", "signup"])
def test_auth_pages_render(client, db, name):
    assert client.get(reverse(name)).status_code == 200
