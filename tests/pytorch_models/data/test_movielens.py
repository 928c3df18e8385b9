"""The one MovieLens reader (pytorch_models/data/movielens.py), on the tiny releases of
tests/movie/fixtures that the importer's tests load too."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytorch_models.data.movielens import (
    MovieLensFormatError,
    movie_tags,
    movies_read,
    rating_pairs,
    ratings_read,
    release_detect,
    tag_normalise,
    tags_read,
    title_parse,
)

FIXTURES = Path(__file__).resolve().parents[2] / "movie" / "fixtures"


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("From Dusk Till Dawn 2: Texas Blood Money (1999) ", "From Dusk Till Dawn 2: Texas Blood Money",
         1999),
        ("Babylon 5", "Babylon 5", None),
        ("Ready Player One", "Ready Player One", None),
        ("American President, The (1995)", "American President, The", 1995),
        ("Assembly (Ji jie hao) (2007) ", "Assembly (Ji jie hao)", 2007),
        ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto", 2006),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975),
        ("Stranger Things (2016- )", "Stranger Things", 2016),
        ("1984 (1956)", "1984", 1956),
        ("2001: A Space Odyssey (1968)", "2001: A Space Odyssey", 1968),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
        ("  Hyena Road  ", "Hyena Road", None),
    ],
)
def test_title_parse(raw, title, year):
    assert title_parse(raw) == (title, year)


def test_detect_formats():
    assert release_detect(FIXTURES / "ml-latest-tiny").format == "csv"
    assert release_detect(FIXTURES / "ml-1m-tiny").format == "dat"
    assert release_detect(FIXTURES / "ml-100k-tiny").format == "100k"


def test_detect_rejects_missing_and_unknown_folders(tmp_path):
    with pytest.raises(MovieLensFormatError, match="is not a folder"):
        release_detect(tmp_path / "nope")
    with pytest.raises(MovieLensFormatError, match="holds no MovieLens release"):
        release_detect(FIXTURES / "not-movielens")


def test_csv_movies_join_links_and_drop_placeholder_genres():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-latest-tiny"))}
    assert movies[1].imdb_id == "0114709" and movies[1].tmdb_id == 862
    assert movies[27008].tmdb_id is None
    assert movies[11].title == "American President, The"
    assert movies[171749].genres == ()
    assert movies[40697].year is None


def test_dat_movies_are_latin1():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-1m-tiny"))}
    assert movies[3842].title == "Café au Lait"
    assert movies[1].genres == ("Animation", "Children's", "Comedy")


def test_100k_movies_use_genre_flags_and_release_date():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-100k-tiny"))}
    assert movies[1].genres == ("Animation", "Children", "Comedy")
    assert movies[2].genres == ("Action", "Adventure", "Thriller")
    assert movies[267].genres == () and movies[267].year is None
    assert (movies[1300].title, movies[1300].year) == ("'Til There Was You", 1997)
    assert movies[1645].title == "Señorita Extraviada"


def test_ratings_rows():
    rows = list(ratings_read(release_detect(FIXTURES / "ml-100k-tiny")))
    assert rows[0].dataset_user == 196 and rows[0].movie_id == 1 and rows[0].rating == 3.0
    assert rows[0].rated_at == datetime.fromtimestamp(881250949, tz=UTC)
    assert len(list(ratings_read(release_detect(FIXTURES / "ml-1m-tiny")))) == 5


def test_rating_pairs_are_the_rows_ids_in_file_order():
    for folder in ("ml-latest-tiny", "ml-1m-tiny", "ml-100k-tiny"):
        release = release_detect(FIXTURES / folder)
        rows = [[r.dataset_user, r.movie_id] for r in ratings_read(release)]
        assert rating_pairs(release).tolist() == rows


def test_bad_rating_line_names_the_line(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,x,4.0,1\n")
    with pytest.raises(MovieLensFormatError, match="line 2"):
        list(ratings_read(release_detect(tmp_path)))
    with pytest.raises(MovieLensFormatError, match="not a rating"):
        rating_pairs(release_detect(tmp_path))


def test_tags_are_normalised_and_counted_by_distinct_users(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n10,A (2000),Drama\n20,B (2001),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.0,1\n")
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,10,Dark  Comedy ,1\n2,10,dark comedy,2\n2,10,DARK COMEDY,3\n"
        "2,10,quirky,4\n3,20,,5\n3,20,Quirky,6\n"
    )
    rows = tags_read(release_detect(tmp_path))

    assert rows[0] == (1, 10, "dark comedy") and len(rows) == 5  # the blank tag is dropped
    assert movie_tags(rows) == {10: [("dark comedy", 2), ("quirky", 1)], 20: [("quirky", 1)]}
    assert tag_normalise("  Based on  a BOOK ") == "based on a book"
    assert tags_read(release_detect(FIXTURES / "ml-1m-tiny")) == []
