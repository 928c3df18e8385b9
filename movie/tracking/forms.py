from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """Validates a new account; `movie.tracking.services.user_signup` creates it."""
