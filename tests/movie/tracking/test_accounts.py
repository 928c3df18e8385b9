import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from eventstore import clicklog
from eventstore.clicklog import Event, events_for
from movie.tracking import events, moves, removals
from movie.tracking.models import AccountVisitor, Interaction, RemovalMark
from movie.tracking.visitors import account_visitor
from predictors.live import history_after
from tests.movie.held import Held

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
    response = client.post(reverse("signup"),
                           {"username": "bob", "password1": PASSWORD, "password2": "other"})
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
    real_move = moves.history_move

    def broken(**kwargs):
        raise RuntimeError("kafka is down")

    monkeypatch.setattr(moves, "history_move", broken)
    response = client.post(reverse("login"), {"username": "edsger", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert Interaction.objects.filter(visitor=anonymous).count() == 1  # not moved yet

    monkeypatch.setattr(moves, "history_move", real_move)
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



# --- Account moves that cannot cross people ----------------------------------------------------


def _history(visitor: str) -> list[int]:
    return sorted(Interaction.objects.filter(visitor=visitor).values_list("movie_id", flat=True))


def _logged(visitor: str) -> list[int]:
    return sorted(e.movie_id for e in events_for(visitor, pending=True))


def _signed_in_click(client, movie_id: int) -> str:
    visitor = AccountVisitor.objects.get(user_id=client.session["_auth_user_id"]).visitor
    events.event_record(visitor=visitor, movie_id=movie_id, kind="click")
    return visitor


def test_a_log_in_over_a_signed_in_session_moves_nothing(client, catalogue, clicklog_table):
    """Issue 21's reproduction: click, sign up as A (A adopts the id), click, log in as B
    without logging out. A keeps both clicks; B gets none of them."""
    b = get_user_model().objects.create_user(username="bea", password=PASSWORD)
    anonymous = _anonymous_click(client, 1)
    client.post(reverse("signup"), {"username": "ada", "password1": PASSWORD, "password2": PASSWORD})
    assert "visitor" not in client.session  # adopted: no longer the session's to give
    a = _signed_in_click(client, 11)
    assert a == anonymous

    assert client.post(reverse("login"), {"username": "bea", "password": PASSWORD}).status_code == 302

    b_visitor = account_visitor(b)
    assert client.session["_auth_user_id"] == str(b.pk)
    assert _history(a) == _logged(a) == [1, 11]
    assert _history(b_visitor) == _logged(b_visitor) == []


def test_an_anonymous_history_moves_once(client, catalogue, clicklog_table):
    """The history moves to the first account logged in; logging in to a second one over it
    (no log-out between) moves nothing more."""
    users = [get_user_model().objects.create_user(username=name, password=PASSWORD) for name in ("cy", "di")]
    anonymous = _anonymous_click(client, 11)
    client.post(reverse("login"), {"username": "cy", "password": PASSWORD})
    first = AccountVisitor.objects.get(user=users[0]).visitor
    assert "visitor" not in client.session
    assert _history(first) == _logged(first) == [11] and _logged(anonymous) == []

    client.post(reverse("login"), {"username": "di", "password": PASSWORD})

    second = account_visitor(users[1])
    assert _history(first) == _logged(first) == [11]
    assert _history(second) == _logged(second) == []


def test_an_id_is_claimed_once_by_sign_up_or_log_in(catalogue, clicklog_table):
    """A sign-up and a log-in racing in one session both want its id: whichever claims it first
    has it; an adopted id is never moved, and a moved one is never adopted."""
    adopter, mover = (get_user_model().objects.create_user(username=n, password=PASSWORD)
                      for n in ("ed", "flo"))
    adopted, moved = "v:" + "a" * 32, "v:" + "b" * 32
    events.event_record(visitor=adopted, movie_id=11, kind="click")
    events.event_record(visitor=moved, movie_id=1, kind="click")
    mover_visitor = AccountVisitor.objects.create(user=mover, visitor="v:" + "c" * 32).visitor

    assert account_visitor(adopter, adopt=adopted) == adopted
    assert moves.history_move(from_visitor=adopted, to_visitor=mover_visitor) == 0
    assert _history(adopted) == _logged(adopted) == [11] and _logged(mover_visitor) == []

    assert moves.history_move(from_visitor=moved, to_visitor=mover_visitor) == 1
    other = get_user_model().objects.create_user(username="gus", password=PASSWORD)
    assert account_visitor(other, adopt=moved) not in (moved, mover_visitor)
    assert _history(mover_visitor) == _logged(mover_visitor) == [1]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_click_in_flight_during_a_log_in_lands_on_the_account(client, catalogue, clicklog_table, settings):
    """A click sent anonymously is still in flight (pending, its row written) while the session
    logs in: the move leaves it, and it follows the history once it confirms. Old code: the
    move deleted its pending item, and the click then confirmed under the old id."""
    user = get_user_model().objects.create_user(username="hal", password=PASSWORD)
    anonymous = _anonymous_click(client, 1)
    click = Held(settings, "mirror:11", events.event_record, visitor=anonymous, movie_id=11, kind="click")

    client.post(reverse("login"), {"username": "hal", "password": PASSWORD})
    account = AccountVisitor.objects.get(user=user).visitor
    assert _history(account) == _logged(account) == [1]  # moved; the click in flight not yet
    landed = click.release()

    assert landed.event_id and landed.movie_id == 11  # answered 202
    assert _history(account) == [1, 11]
    assert [(e.movie_id, e.pending) for e in events_for(account, pending=True)] == [(1, False), (11, False)]
    assert _history(anonymous) == _logged(anonymous) == []


def test_a_retry_after_a_log_in_finishes_the_click_on_the_account(client, catalogue, clicklog_table):
    """The anonymous first try died after its row (pending item, row under the old id); the
    browser's retry comes as the account after the log-in: it confirms the event and brings it."""
    user = get_user_model().objects.create_user(username="ida", password=PASSWORD)
    anonymous = _anonymous_click(client, 1)
    key = str(uuid.uuid4())
    ts = events._now()
    clicklog.event_put(Event(event_id=key, visitor=anonymous, movie_id=11, kind="click", ts=ts, pending=True))
    Interaction.objects.create(visitor=anonymous, movie_id=11, kind="click", event_id=key,
                               created_at=events._at(ts))
    client.post(reverse("login"), {"username": "ida", "password": PASSWORD})
    account = AccountVisitor.objects.get(user=user).visitor

    response = client.post("/api/events", data={"movie_id": 11, "kind": "click"},
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 202 and response.json()["event_id"] == key
    assert _history(account) == [1, 11]
    assert [(e.movie_id, e.pending) for e in events_for(account, pending=True)] == [(1, False), (11, False)]
    assert _logged(anonymous) == [] and _history(anonymous) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_click_landing_after_its_account_removed_the_movie_agrees_with_the_models(client, catalogue,
                                                                                  clicklog_table, settings):
    """A click in flight under the old id lands after the account removed that movie: it sorts
    before the removal, so the workers drop it, and the history must too."""
    user = get_user_model().objects.create_user(username="jo", password=PASSWORD)
    anonymous = _anonymous_click(client, 11)
    click = Held(settings, "mirror:11", events.event_record, visitor=anonymous, movie_id=11, kind="click")
    client.post(reverse("login"), {"username": "jo", "password": PASSWORD})
    account = AccountVisitor.objects.get(user=user).visitor
    assert removals.history_remove(visitor=account, movie_id=11) is not None

    landed = click.release()

    assert landed.movie_id == 11
    assert history_after([], events_for(account)) == _history(account) == []
    assert [e.kind for e in events_for(account)] == ["click", "click", "remove"]


def test_a_moved_removal_is_marked_for_the_account_before_it_lands(client, catalogue, clicklog_table):
    """A removal the move gives the account is marked under the account's id, so the account's
    own clicks of that movie look for it (`movie.tracking.removal_marks`)."""
    get_user_model().objects.create_user(username="ada", password=PASSWORD)
    anonymous = _anonymous_click(client, 11)
    assert removals.history_remove(visitor=anonymous, movie_id=11) is not None

    assert client.post(reverse("login"), {"username": "ada", "password": PASSWORD}).status_code == 302

    account = AccountVisitor.objects.get(user__username="ada").visitor
    assert [e.kind for e in events_for(account)] == ["click", "remove"]
    assert RemovalMark.objects.filter(visitor=account, movie_id=11).exists()
