from django import forms


class CatalogueQueryForm(forms.Form):
    SORTS = [("popular", "Most popular"), ("newest", "Newest"), ("rated", "Highest rated"),
             ("title", "Title")]

    genre = forms.CharField(required=False, max_length=64)
    q = forms.CharField(required=False, max_length=200, strip=True)
    page = forms.IntegerField(required=False, min_value=1)
    sort = forms.ChoiceField(required=False, choices=SORTS)

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"genre": data["genre"], "query": data["q"], "page": data["page"] or 1,
                "sort": data["sort"] or "popular"}

    def is_home(self) -> bool:
        """The catalogue's first page as it opens: where the home row goes."""
        data = self.cleaned_data
        return not data["genre"] and not data["q"] and (data["page"] or 1) == 1
