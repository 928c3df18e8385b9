"""Sign-up and log-in: Django's auth views, plus giving the session's history to the account.

Signing up, the new account takes over the session's visitor id: its history is already
keyed right. Logging in to an account that has its own id moves the session's history there.
Only an anonymous session's id moves, once: both take it out of the session, and a log-in
over a signed-in session moves nothing (`login()` then starts a new session for the other
account, and the first account keeps its history). A move that fails half-way (a service
down) is remembered in the session and finished on a later request; each of its steps can be
repeated safely.
"""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, RedirectURLMixin
from django.http import HttpResponse, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.views.generic.edit import FormView

from movie.tracking.forms import SignupForm
from movie.tracking.ratelimit import client_address, limit, login_limited
from movie.tracking.services import user_signup
from movie.tracking.visitors import MOVE_FIELD, account_visitor, history_move_finish, session_visitor_take


class SignInView(LoginView):
    template_name = "tracking/login.html"

    @method_decorator(login_limited)  # the admin's log-in too (webapp/urls.py)
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        # Read before login(): an anonymous session's data is kept under a new key, a signed-in
        # one is flushed when the account changes, so the current account's unfinished move goes first.
        history_move_finish(self.request)
        anonymous = session_visitor_take(self.request)
        response = super().form_valid(form)
        if anonymous and anonymous != account_visitor(self.request.user):
            self.request.session[MOVE_FIELD] = anonymous
            history_move_finish(self.request)
        return response


class SignUpView(RedirectURLMixin, FormView):
    template_name = "tracking/signup.html"
    form_class = SignupForm
    next_page = settings.LOGIN_REDIRECT_URL

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return HttpResponseRedirect(self.get_success_url())
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "next": self.get_redirect_url()}

    def post(self, request, *args, **kwargs):
        # Counted before the form is read: each try costs a PBKDF2 and tells whether a name is taken.
        limit("signup", client_address(request))
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        user = user_signup(username=form.cleaned_data["username"], password=form.cleaned_data["password1"])
        account_visitor(user, adopt=session_visitor_take(self.request))
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        # Not redirect(): it would read a `next` such as "2" as a URL pattern name and raise.
        return HttpResponseRedirect(self.get_success_url())
