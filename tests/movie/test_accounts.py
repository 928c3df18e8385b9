import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from movie import events
from eventstore.clicklog import events_for
from movie.models import AccountVisitor, Interaction

PASSWORD = "correct-horse-battery"


def _anonymous_click(client, movie_id: int) -> str:
    """Open a session the way a visitor does and record a click through the real pipeline."""
    client.get(reverse("history"))
    visitor = client.session["visitor"]
    events.event_record(visitor=visitor, movie_id=movie_id, kind="click")
    return visitor


def test_signup_logs_in_and_the_account_takes_over_the_session_history(client, catalogue, clicklog_table):
    anonymous = _anonymous_click(client, 40697)
    session_key = client.session.session_key

    response = client.post(
        reverse("signup"), {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response.status_code == 302 and response["Location"] == reverse("catalogue")
    user = get_user_model().objects.get(username="ada")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session.session_key != session_key
    assert AccountVisitor.objects.get(user=user).visitor == anonymous  # nothing had to move
    assert [e.movie_id for e in events_for(anonymous)] == [40697]
    page = client.get(reverse("history"))
    assert [h.movie.id for h in page.context["history"]] == [40697]
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("history")).context["history"] == []  # the next visitor is someone else
    assert client.session["visitor"] != anonymous


def test_signup_rejects_mismatched_passwords(client, db):
    response = client.post(reverse("signup"), {"username": "bob", "password1": PASSWORD, "password2": "other"})
    assert response.status_code == 200 and response.context["form"].errors
    assert not get_user_model().objects.filter(username="bob").exists()


def test_login_moves_history_and_logout_keeps_it_with_the_account(client, catalogue, clicklog_table):
    user = get_user_model().objects.create_user(username="grace", password=PASSWORD)
    anonymous = _anonymous_click(client, 11)

    response = client.post(reverse("login"), {"username": "grace", "password": PASSWORD})

    assert response.status_code == 302
    account = AccountVisitor.objects.get(user=user).visitor
    assert account != anonymous and account.startswith("v:")
    assert list(Interaction.objects.filter(visitor=account).values_list("movie_id", flat=True)) == [11]
    assert [e.movie_id for e in events_for(account)] == [11]
    assert not Interaction.objects.filter(visitor=anonymous).exists() and events_for(anonymous) == []
    assert "Log out" in client.get(reverse("catalogue")).content.decode()

    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("history")).context["history"] == []


def test_no_session_key_leaves_the_web_process(client, catalogue, clicklog_table):
    visitor = _anonymous_click(client, 11)
    session_key = client.session.session_key
    assert visitor.startswith("v:") and session_key not in visitor
    assert all(e.visitor == visitor for e in events_for(visitor))
    assert Interaction.objects.filter(visitor__contains=session_key).count() == 0


def test_a_move_that_failed_is_finished_on_a_later_request(client, catalogue, clicklog_table, monkeypatch):
    user = get_user_model().objects.create_user(username="edsger", password=PASSWORD)
    anonymous = _anonymous_click(client, 11)
    real_move = events.history_move

    def broken(**kwargs):
        raise RuntimeError("kafka is down")

    monkeypatch.setattr(events, "history_move", broken)
    response = client.post(reverse("login"), {"username": "edsger", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert Interaction.objects.filter(visitor=anonymous).count() == 1  # not moved yet

    monkeypatch.setattr(events, "history_move", real_move)
    page = client.get(reverse("history"))
    assert [h.movie.id for h in page.context["history"]] == [11]
    account = AccountVisitor.objects.get(user=user).visitor
    assert [e.movie_id for e in events_for(account)] == [11] and events_for(anonymous) == []


def test_wrong_password_is_refused(client, db):
    get_user_model().objects.create_user(username="alan", password=PASSWORD)
    response = client.post(reverse("login"), {"username": "alan", "password": "nope"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "Sign up" in client.get(reverse("login")).content.decode()


@pytest.mark.parametrize("name", ["login", "signup"])
def test_auth_pages_render(client, db, name):
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["2", "0", "/history/"])
def test_a_signed_in_visitor_on_the_sign_up_page_goes_to_next(client, next_url):
    """A bare word in `next` is a relative URL, never a view name (redirect() tried it as one: 500)."""
    client.post(reverse("signup"), {"username": "ann", "password1": PASSWORD, "password2": PASSWORD})
    assert client.session.get("_auth_user_id")
    response = client.post(f"/accounts/signup/?next={next_url}", {"username": "", "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url

