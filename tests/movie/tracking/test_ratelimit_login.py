"""Log-in and sign-up limits, through a simulated proxy (REMOTE_ADDR the proxy's, the client in
X-Forwarded-For): one address guessing one account, one address spraying many, many addresses
guessing one account (which must not lock out the account's own browser), every spelling of a
username that reaches the same account, the admin's log-in, and sign-ups per address."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.test import Client

from movie.tracking.ratelimit import DEVICE_COOKIE, username_key

PROXY = "10.255.0.1"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def limits(settings):
    settings.TRUSTED_PROXIES = 1
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; not under test
    settings.RATE_LIMITS = {
        "event": (100, 60), "event_address": (100, 60), "session": (100, 60), "signup": (2, 3600),
        "login": (3, 300), "login_address": (6, 300), "login_username": (5, 300), "login_device": (3, 300),
    }
    return settings.RATE_LIMITS


@pytest.fixture(autouse=True)
def rate_keys_removed(settings):
    """The counters a test made go with it (each lives a window otherwise)."""
    store = redis.Redis.from_url(settings.BROKER_REDIS_URL)
    yield
    for name in store.scan_iter("rate:*"):
        store.delete(name)


def _browser(address: str | None = None) -> Client:
    """A browser behind the proxy, which appends the browser's address to X-Forwarded-For."""
    address = address or f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=address)


def _log_in(browser: Client, username: str, password: str = "wrong", *,
            path: str = "/accounts/login/") -> int:
    return browser.post(path, {"username": username, "password": password}).status_code


def test_the_username_is_keyed_as_the_form_and_the_database_read_it():
    spellings = [" alice", "alice  ", "ａｌｉｃｅ", "ALICE", "Alice", "ÁLİCE", "al\u200bice"]
    assert {username_key(s) for s in spellings} == {"alice"}
    assert username_key("bob") != username_key("alice")


def test_every_spelling_of_a_username_shares_its_tries(db, limits):
    browser = _browser()
    statuses = [_log_in(browser, name) for name in (" alice", "alice  ", "ａｌｉｃｅ", "ALICE")]

    assert statuses == [200, 200, 200, 429]
    assert _log_in(browser, "bob") == 200  # another account from the same address has its own


def test_an_attackers_guesses_from_one_address_do_not_lock_the_owner_out(db, limits, django_user_model):
    django_user_model.objects.create_user(username="admin", password=PASSWORD)
    attacker = _browser()
    assert [_log_in(attacker, "admin") for _ in range(4)] == [200, 200, 200, 429]
    assert _log_in(attacker, "admin", PASSWORD) == 429  # even the right password, once refused

    assert _log_in(_browser(), "admin", PASSWORD) == 302  # the owner, from another address


def test_the_admin_log_in_is_limited_and_shares_the_counters(db, limits, django_user_model):
    django_user_model.objects.create_user(username="root", password=PASSWORD, is_staff=True,
                                          is_superuser=True)
    browser = _browser()
    statuses = [_log_in(browser, "root", path="/admin/login/"), _log_in(browser, "ROOT"),
                _log_in(browser, " root", path="/admin/login/"),
                _log_in(browser, "root", PASSWORD, path="/admin/login/")]

    assert statuses == [200, 200, 200, 429]
    assert _log_in(_browser(), "root", PASSWORD, path="/admin/login/") == 302


def test_one_address_spraying_many_accounts_is_held(db, limits):
    browser = _browser()
    statuses = [_log_in(browser, f"user{n}") for n in range(7)]
    assert statuses == [200] * 6 + [429]


def test_many_addresses_lock_a_username_but_not_its_owners_browser(db, limits, django_user_model):
    django_user_model.objects.create_user(username="grace", password=PASSWORD)
    owner = _browser()
    assert _log_in(owner, "grace", PASSWORD) == 302
    assert DEVICE_COOKIE in owner.cookies
    owner.post("/accounts/logout/")

    # Guesses from two addresses, each within its own limit, use up the username's 5 tries
    # (the owner's first log-in, from a browser not yet known, was one).
    attackers = [_browser(), _browser()]
    statuses = [_log_in(attacker, "grace") for attacker in attackers for _ in range(3)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert _log_in(_browser(), "grace", PASSWORD) == 429  # a browser that never logged in waits

    assert _log_in(owner, "Grace", PASSWORD) == 302  # the owner's browser is let through
    assert "_auth_user_id" in owner.session


def test_a_device_cookie_for_another_account_or_forged_counts_on_the_username(db, limits, django_user_model):
    django_user_model.objects.create_user(username="ada", password=PASSWORD)
    django_user_model.objects.create_user(username="linus", password=PASSWORD)
    browser = _browser()
    assert _log_in(browser, "ada", PASSWORD) == 302
    browser.post("/accounts/logout/")
    for attacker in (_browser(), _browser()):  # "linus" is used up
        for _ in range(3):
            _log_in(attacker, "linus")

    assert _log_in(browser, "linus", PASSWORD) == 429  # ada's cookie does not speak for linus
    forger = _browser()
    forger.cookies[DEVICE_COOKIE] = "0123456789abcdef:linus"  # unsigned
    assert _log_in(forger, "linus", PASSWORD) == 429


def test_sign_ups_are_limited_per_address_before_the_form_is_read(db, limits, django_user_model):
    django_user_model.objects.create_user(username="taken", password=PASSWORD)
    browser = _browser()
    form = {"username": "taken", "password1": PASSWORD, "password2": PASSWORD}
    first, second, third = (browser.post("/accounts/signup/", form) for _ in range(3))

    assert first.status_code == second.status_code == 200
    assert "A user with that username already exists." in first.content.decode()
    assert third.status_code == 429  # refused as it stands: a taken name answers as a free one would
    assert "already exists" not in third.content.decode()
    fresh = _browser().post("/accounts/signup/", {**form, "username": "fresh"})
    assert fresh.status_code == 302 and django_user_model.objects.filter(username="fresh").exists()
