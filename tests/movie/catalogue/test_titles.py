"""Titles as people write them (issue 25): shown with the article in front, sorted and searched
as MovieLens stores them as well as as shown."""

import pytest

from movie.catalogue import selectors
from movie.catalogue.models import Movie
from movie.catalogue.titles import query_article_split, title_display


@pytest.mark.parametrize(("stored", "shown"), [
    ("Matrix, The", "The Matrix"),
    ("Shawshank Redemption, The", "The Shawshank Redemption"),
    ("Hard Day's Night, A", "A Hard Day's Night"),
    ("Unforgettable Summer, An (Un été inoubliable)", "An Unforgettable Summer (Un été inoubliable)"),
    ("Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il)",
     "The Good, the Bad and the Ugly (Il Buono, il brutto, il cattivo)"),
    ("City of Lost Children, The (Cité des enfants perdus, La)",
     "The City of Lost Children (La Cité des enfants perdus)"),
    ("Boot, Das (Boat, The)", "Das Boot (The Boat)"),
    ("Auberge espagnole, L'", "L'Auberge espagnole"),
    ("Seventh Seal, The (Sjunde inseglet, Det)", "The Seventh Seal (Det Sjunde inseglet)"),
    ("Mrs. Brown (a.k.a. Her Majesty, Mrs. Brown)", "Mrs. Brown (a.k.a. Her Majesty, Mrs. Brown)"),
    ("Shooting (a.k.a. Shooting, The)", "Shooting (a.k.a. The Shooting)"),
    # not an article, or not at the end: as stored
    ("Ciao, Professore! (Io speriamo che me la cavo)", "Ciao, Professore! (Io speriamo che me la cavo)"),
    ("Paris, Texas", "Paris, Texas"),
    ("(500) Days of Summer", "(500) Days of Summer"),
    ("Toy Story", "Toy Story"),
    ("The", "The"),
    ("", ""),
])
def test_a_stored_title_is_shown_with_its_article_in_front(stored, shown):
    assert title_display(stored) == shown


@pytest.mark.parametrize(("query", "split"), [
    ("the matrix", ("The", "matrix")),
    ("  A Hard Day", ("A", "Hard Day")),
    ("l'auberge", ("L'", "auberge")),
    ("Les Misérables", ("Les", "Misérables")),
    ("matrix", None),
    ("the", None),
    ("theatre", None),
])
def test_a_query_that_starts_with_an_article(query, split):
    assert query_article_split(query) == split


@pytest.mark.django_db
def test_search_matches_both_forms_and_the_sort_order_is_the_stored_one():
    Movie.objects.bulk_create([
        Movie(id=1, title="Matrix, The", year=1999),
        Movie(id=2, title="Matrix Reloaded, The", year=2003),
        Movie(id=3, title="Auberge espagnole, L'", year=2002),
        Movie(id=4, title="Theory of Everything, The", year=2014),
        Movie(id=5, title="Heat", year=1995),
    ])

    def found(query):
        return [m.id for m in selectors.catalogue_page(query=query, sort="title").object_list]

    # "Matrix Reloaded, The" sorts first: a space before a comma
    assert found("the matrix") == [2, 1]  # as people write it
    assert found("Matrix, The") == [1]  # as stored
    assert found("matrix") == [2, 1]
    assert found("L'Auberge") == [3]
    assert found("the heat") == []  # "Heat" has no article: the article is not dropped
    # sorted by the stored title: Auberge, Heat, Matrix Reloaded, Matrix, Theory
    assert [m.id for m in selectors.catalogue_page(sort="title").object_list] == [3, 5, 2, 1, 4]


@pytest.mark.django_db
def test_pages_show_the_title_as_people_write_it(client):
    Movie.objects.create(id=1, title="Shawshank Redemption, The", year=1994)
    page = client.get("/movies/1/").content.decode()
    assert "<h1>The Shawshank Redemption" in page and "Redemption, The" not in page
    listing = client.get("/?q=the+shawshank").content.decode()
    assert "The Shawshank Redemption" in listing and "Redemption, The" not in listing
    assert str(Movie.objects.get(id=1)) == "The Shawshank Redemption (1994)"
