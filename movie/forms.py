from django import forms
from django.contrib.auth.forms import UserCreationForm


class CatalogueQueryForm(forms.Form):
    genre = forms.CharField(required=False, max_length=64)
    q = forms.CharField(required=False, max_length=200, strip=True)
    page = forms.IntegerField(required=False, min_value=1)

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"genre": data["genre"], "query": data["q"], "page": data["page"] or 1}


class SignupForm(UserCreationForm):
    """Validates a new account; `movie.services.user_signup` creates it."""
