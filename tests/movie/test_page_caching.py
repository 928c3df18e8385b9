"""What the pages remember between requests is never older than what it was made from."""

from io import StringIO

import torch
from django.core.management import call_command
from django.urls import reverse
from safetensors.torch import load_file, save_file

from movie.models import Movie
from predictors import registry
from predictors.recommend import similar
from pytorch_models.checkpoint import ITEMS


def test_an_edited_title_shows_on_the_next_page(client, catalogue):
    assert "Toy Story" in client.get(reverse("catalogue")).content.decode()  # its poster is now remembered

    Movie.objects.filter(pk=1).update(title="Toy Story (director's cut)", poster_url="https://img.example/toy.jpg")

    body = client.get(reverse("catalogue")).content.decode()
    assert "Toy Story (director&#x27;s cut)" in body and "https://img.example/toy.jpg" in body
    assert body.split("All movies", 1)[1].count('class="poster"') == 5  # the grid, below the home row


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

    # A new version whose item table has its rows in the reverse order: other neighbours.
    live = registry.model_dir() / "pinsage" / registry.latest_version("pinsage")
    with registry.publishing("pinsage") as folder:
        for file in live.iterdir():
            (folder / file.name).write_bytes(file.read_bytes())
        items = load_file(live / ITEMS)
        items["item_embeddings"] = items["item_embeddings"].flip(0).contiguous()
        save_file(items, folder / ITEMS)

    second = [m for m, _ in similar(movie_id=1, k=4)]
    assert second == _expected_similar(1, 4) and second != first
