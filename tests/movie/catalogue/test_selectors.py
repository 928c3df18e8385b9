import numpy as np
import pytest
import torch
from django.core.paginator import EmptyPage

from movie.catalogue import selectors
from movie.catalogue.models import Movie


def test_training_snapshot(catalogue):
    snap = selectors.training_snapshot()
    assert snap.movie_ids == [1, 11, 27008, 40697, 171749]
    assert snap.titles[0] == "Toy Story" and snap.years[3] is None
    assert snap.genres[0] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert snap.genres[4] == []
    assert snap.pairs.tolist() == [[1, 1], [1, 11], [1, 40697], [2, 1], [2, 27008], [3, 1], [3, 171749]]
    assert snap.tags == [["pixar"], ["pixar", "politics"], ["vampires"], ["space opera"], []]
    assert snap.stamps is None  # read only for the sequence models


def test_training_snapshot_stamps_are_the_files_timestamps(catalogue):
    """Integer seconds computed by the database (MariaDB here, SQLite on a bare machine), one
    per pair: ratings.csv's own timestamps."""
    snap = selectors.training_snapshot(stamps=True)
    assert np.array_equal(snap.pairs, selectors.training_snapshot().pairs)
    assert snap.stamps.tolist() == [964982703, 964981247, 964982224, 1445714835, 1445714994,
                                    1306463578, 1306464000]


def test_training_snapshot_features_match_the_release_files(catalogue):
    """The site's tag feature (tags from the database) is the one the CLI builds from tags.csv."""
    from predictors.training import training_dataset
    from pytorch_models.data.interactions import load_movielens_features
    from tests.movie.conftest import FIXTURES

    snap = selectors.training_snapshot()
    _, from_database = training_dataset(snap)
    from_files = load_movielens_features(FIXTURES / "ml-latest-tiny", np.asarray(snap.movie_ids))
    assert (from_database.tags != 0).sum(1).tolist() == [1, 1, 0, 0, 0]  # "pixar", on two movies
    assert torch.equal(from_database.tags, from_files.tags)
    assert torch.equal(from_database.title_words, from_files.title_words)


def test_movies_by_ids_keeps_order_and_drops_unknown(catalogue):
    assert [m.id for m in selectors.movies_by_ids([40697, 123456, 1, 11])] == [40697, 1, 11]


def test_catalogue_page_filters_and_searches(catalogue):
    assert ([m.id for m in selectors.catalogue_page(genre="Comedy", sort="title").object_list]
            == [11, 27008, 1])
    assert [m.id for m in selectors.catalogue_page(query="BABYLON").object_list] == [40697]
    assert [m.id for m in selectors.catalogue_page(genre="Sci-Fi", query="toy").object_list] == []
    assert selectors.catalogue_page(genre="No Such Genre").paginator.count == 0


@pytest.mark.django_db
def test_catalogue_page_paginates_by_48():
    Movie.objects.bulk_create([Movie(id=i, title=f"Movie {i:03d}") for i in range(1, 101)])
    pages = [selectors.catalogue_page(page=n) for n in (1, 2, 3)]
    assert [len(p.object_list) for p in pages] == [48, 48, 4]
    assert pages[1].object_list[0].title == "Movie 049"
    with pytest.raises(EmptyPage):
        selectors.catalogue_page(page=4)


def test_popular_movies_counts_dataset_ratings(catalogue):
    top = selectors.popular_movies(k=2)
    assert [(m.id, score) for m, score in top] == [(1, 3.0), (11, 1.0)]
