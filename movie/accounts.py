"""Sign-up and log-in: Django's auth views, plus moving the session's history to the account.

Django's login() gives the session a new key, so the anonymous visitor key is read first.
"""

import logging

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, RedirectURLMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.generic.edit import FormView

from movie import events
from movie.forms import SignupForm
from movie.ratelimit import client_address, limit
from movie.services import user_signup
from movie.visitors import session_visitor

log = logging.getLogger(__name__)


def _history_move(request: HttpRequest, anonymous: str | None) -> None:
    if anonymous is None:
        return
    to_visitor = f"u:{request.user.pk}"
    try:
        events.history_move(from_visitor=anonymous, to_visitor=to_visitor)
    except Exception:
        # Signing in must not fail because the click pipeline is down; the history stays
        # with the old session key, which is logged so it can be moved by hand.
        log.exception("could not move history from %s to %s", anonymous, to_visitor)


class SignInView(LoginView):
    template_name = "registration/login.html"

    def post(self, request, *args, **kwargs):
        limit("login", f"{client_address(request)}:{request.POST.get('username', '')}")
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        anonymous = session_visitor(self.request)
        response = super().form_valid(form)
        _history_move(self.request, anonymous)
        return response


class SignUpView(RedirectURLMixin, FormView):
    template_name = "registration/signup.html"
    form_class = SignupForm
    next_page = settings.LOGIN_REDIRECT_URL

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(self.get_success_url())
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "next": self.get_redirect_url()}

    def form_valid(self, form) -> HttpResponse:
        anonymous = session_visitor(self.request)
        user = user_signup(username=form.cleaned_data["username"], password=form.cleaned_data["password1"])
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        _history_move(self.request, anonymous)
        return redirect(self.get_success_url())
