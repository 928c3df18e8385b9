"""What the pages remember between requests is never older than what it was made from."""

from io import StringIO

import torch
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from safetensors.torch import load_file, save_file

from movie.catalogue import selectors
from movie.catalogue.models import Movie
from predictors import registry
from predictors.recommend import similar
from pytorch_models.checkpoint import ITEMS
from pytorch_models.serving.neighbours import NEIGHBOURS


def test_an_edited_title_shows_on_the_next_page(client, catalogue):
    assert "Toy Story" in client.get(reverse("catalogue")).content.decode()  # its poster is now remembered

    movie = Movie.objects.get(pk=1)  # edited as the admin does: a save
    movie.title, movie.poster_url = "Toy Story (director's cut)", "https://img.example/toy.jpg"
    movie.save()

    body = client.get(reverse("catalogue")).content.decode()
    assert "Toy Story (director&#x27;s cut)" in body and "https://img.example/toy.jpg" in body
    assert body.count("Toy Story") == body.count("Toy Story (director&#x27;s cut)")  # no stale copy anywhere
    assert body.split("All movies", 1)[1].count('class="poster"') == 5  # the grid, below the home row


def test_movie_rows_are_read_once_a_minute_and_dropped_when_saved(catalogue, monkeypatch):
    titles = dict(Movie.objects.filter(pk__in=[1, 11]).values_list("id", "title"))
    assert [m.title for m in selectors.movies_by_ids([11, 1])] == [titles[11], titles[1]]
    assert selectors.movie_get(1).title == titles[1]
    Movie.objects.filter(pk__in=[1, 11]).update(title="changed behind the cache's back")
    with CaptureQueriesContext(connection) as queries:
        assert [m.title for m in selectors.movies_by_ids([1, 11])] == [titles[1], titles[11]]
        assert [g.name for g in selectors.movie_get(1).genres.all()] == [
            "Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert len(queries) == 0

    movie = Movie.objects.get(pk=11)
    movie.save()  # a save drops that row at once
    assert ([m.title for m in selectors.movies_by_ids([1, 11])]
            == [titles[1], "changed behind the cache's back"])
    assert selectors.movie_get(11).genres.count() == 3
    movie.genres.clear()  # and so does a change of its genres
    assert list(selectors.movie_get(11).genres.all()) == []

    monkeypatch.setattr(selectors, "PAGE_DATA_S", 0)  # past the minute, every row is read again
    selectors.page_data_clear()
    assert selectors.movie_get(1).title == "changed behind the cache's back"
    assert [m.title for m in selectors.movies_by_ids([1])] == ["changed behind the cache's back"]


def test_a_catalogue_page_is_read_once_a_minute(catalogue, monkeypatch):
    first = [m.id for m in selectors.catalogue_page(query="toy").object_list]
    with CaptureQueriesContext(connection) as queries:
        again = selectors.catalogue_page(query="toy")
    assert [m.id for m in again.object_list] == first and again.paginator.count == len(first) and not queries
    Movie.objects.filter(pk=11).update(title="A toy president")
    assert [m.id for m in selectors.catalogue_page(query="toy").object_list] == first  # within the minute

    monkeypatch.setattr(selectors, "PAGE_DATA_S", 0)
    selectors.page_data_clear()
    later = selectors.catalogue_page(query="toy")
    assert 11 in [m.id for m in later.object_list] and later.paginator.count == len(first) + 1


def _expected_similar(movie_id: int, k: int) -> list[int]:
    published = registry.published("pinsage")
    table = torch.nn.functional.normalize(published.checkpoint.item_embeddings.float(), dim=1)
    scores = table @ table[published.index_of[movie_id]]
    scores[published.index_of[movie_id]] = float("-inf")
    return [int(published.movie_ids[r]) for r in torch.topk(scores, k).indices]


def test_similar_movies_follow_a_newly_published_version(catalogue):
    call_command("train", model="pinsage", epochs=1, verbosity=0, stdout=StringIO())
    first = [m for m, _ in similar(movie_id=1, k=4)]
    assert first == _expected_similar(1, 4)

    # A new version whose item table has its rows in the reverse order: other neighbours (its
    # neighbour table, derived from the old rows, is not copied: the new version is scored).
    live = registry.model_dir() / "pinsage" / registry.latest_version("pinsage")
    with registry.publishing("pinsage") as folder:
        for file in live.iterdir():
            if file.name != NEIGHBOURS:
                (folder / file.name).write_bytes(file.read_bytes())
        items = load_file(live / ITEMS)
        items["item_embeddings"] = items["item_embeddings"].flip(0).contiguous()
        save_file(items, folder / ITEMS)

    second = [m for m, _ in similar(movie_id=1, k=4)]
    assert second == _expected_similar(1, 4) and second != first
